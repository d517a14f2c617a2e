#!/usr/bin/env bash
# Instructions per proxied request, keel vs nginx, counted by valgrind's callgrind.
#
# Wall-clock and CPU-time figures on a shared 2-core box move by ±10 % from one round to the
# next (run.sh alternates rounds for that reason); an instruction count does not: the same
# build under the same load gives the same figure to within a few tenths of a percent, on a
# busy machine too. That makes this the A/B tool for a change to the request path, and it
# shows where the two proxies differ in user space (the kernel's share, which nginx spends
# more of, is not counted: callgrind sees user-space instructions only).
#
#   bench/gateway/instructions.sh                 # keel (this checkout) and nginx
#   BENCH_KEEL_BIN=/tmp/keel-old bench/gateway/instructions.sh   # another keel build
#   SECS=20 bench/gateway/instructions.sh
#
# Each proxy runs under callgrind in front of the two loopback upstreams of run.sh; after a
# warm-up the counters are zeroed, a closed loop of CONC connections runs for SECS seconds,
# and the counters are dumped: instructions / requests answered. keel runs with the
# executor off (V8 under valgrind takes minutes to start and the gateway does not use it);
# nginx as one worker without the master process (the same code path as each worker of
# run.sh). Needs valgrind, nginx and cargo; loopback only; about a minute.
set -euo pipefail
cd "$(dirname "$0")/../.."

CONC=${CONC:-16}
SECS=${SECS:-10}
UP_A=19001 UP_B=19002 KEEL=18080 KEEL_CTL=18081 NGINX=18090
source bench/gateway/common.sh
OUT=bench/out/instructions
rm -rf "$OUT"; mkdir -p "$OUT"

for tool in valgrind callgrind_control nginx; do
  command -v "$tool" >/dev/null || { echo "$tool missing: apt-get install -y valgrind nginx" >&2; exit 1; }
done
echo "building keel and the load generator (release)..." >&2
cargo build --release --quiet
cargo build --release --quiet --manifest-path bench/gateway/loadgen/Cargo.toml \
  --target-dir bench/out/loadgen-target
LG=bench/out/loadgen-target/release/keel-loadgen
KEEL_BIN=${BENCH_KEEL_BIN:-target/release/keel}  # not KEEL_*: keel reads those as config

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$LG" serve $UP_A a >/dev/null 2>&1 & pids+=($!)
"$LG" serve $UP_B b >/dev/null 2>&1 & pids+=($!)
wait_port $UP_A; wait_port $UP_B

keel_toml "$OUT/keel-data" $KEEL_CTL $KEEL > "$OUT/keel.toml"
printf '[executor]\nenabled = false\n' >> "$OUT/keel.toml"
nginx_conf "$PWD/$OUT" $NGINX $'worker_processes 1;\nmaster_process off;\ndaemon off;' > "$OUT/nginx.conf"

measure() { # name port command... -> $OUT/name.row: "name requests instructions"
  local name=$1 port=$2; shift 2
  valgrind --tool=callgrind --callgrind-out-file="$PWD/$OUT/callgrind.$name.%p" "$@" \
    > "$OUT/$name.log" 2>&1 &
  local vp=$!; pids+=("$vp")
  wait_port "$port" 120  # valgrind starts slowly
  "$LG" closed "http://127.0.0.1:$port/v1/messages" 8 5 > /dev/null  # warm-up
  callgrind_control -z "$vp" > /dev/null 2>&1
  "$LG" closed "http://127.0.0.1:$port/v1/messages" "$CONC" "$SECS" > "$OUT/$name.json"
  callgrind_control -d "$vp" > /dev/null 2>&1
  sleep 1
  kill "$vp"; wait "$vp" 2>/dev/null || true
  local dump; dump=$(ls -t "$OUT"/callgrind."$name".*.* | head -1)
  local ir; ir=$(awk '/^summary:/{print $2; exit}' "$dump")
  local req; req=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$OUT/$name.json")
  echo "$name $req $ir" > "$OUT/$name.row"
}

echo "keel under callgrind (${SECS}s, $CONC connections)..." >&2
measure keel $KEEL "$KEEL_BIN" run --config "$OUT/keel.toml"
echo "nginx under callgrind (${SECS}s, $CONC connections)..." >&2
measure nginx $NGINX nginx -p "$PWD/$OUT" -c "$PWD/$OUT/nginx.conf"

python3 - "$(cat "$OUT/keel.row")" "$(cat "$OUT/nginx.row")" <<'PY' | tee "$OUT/results.md"
import sys
rows = [a.split() for a in sys.argv[1:]]
per = {name: int(ir) / int(req) for name, req, ir in rows}
print("| user-space instructions per request (callgrind) | keel | nginx | keel / nginx |")
print("|---|---|---|---|")
print(f"| closed loop, answered requests: {rows[0][1]} / {rows[1][1]} | {per['keel']:,.0f} | {per['nginx']:,.0f} | {per['keel'] / per['nginx']:.2f}× |")
PY
echo "callgrind dumps (callgrind_annotate) in $OUT" >&2
