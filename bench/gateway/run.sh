#!/usr/bin/env bash
# Gateway benchmark: keel vs nginx (Debian package, proxy_pass + proxy_next_upstream) in front
# of the same two loopback upstreams serving a small JSON body. Prints a Markdown table and
# writes everything to bench/out/gateway/.
#
#   bench/gateway/run.sh                 # full run (failover 60 s per proxy)
#   FAILOVER_SECS=30 bench/gateway/run.sh
#   TPUT_SECS=3 LAT_SECS=3 FAILOVER_SECS=9 BENCH_KEEL_BIN=/tmp/keel-old bench/gateway/run.sh  # short, another build
#   STREAM_ONLY=1 bench/gateway/run.sh   # only the streaming row (about a minute)
#   FAILOVER_SECS=0 bench/gateway/run.sh  # no failover runs
#   PORT_OFFSET=300 bench/gateway/run.sh  # other ports (all shifted by 300)
#
# TLS rows: a keel with [proxy.tls] and an nginx with `listen ... ssl`, both serving the same
# throwaway self-signed certificate (ECDSA P-256, made here with `openssl req`), under the
# same closed- and open-loop load as the plain rows; the load generator speaks TLS 1.3 with
# ALPN http/1.1 to both over keep-alive connections.
#
# Needs: cargo, nginx (apt-get install nginx), python3 (result parsing). Loopback only; every
# process it starts is stopped on exit. Runs take about 5 minutes in total by default.
set -euo pipefail
cd "$(dirname "$0")/../.."

CONC=${CONC:-64}              # closed-loop concurrency
TPUT_SECS=${TPUT_SECS:-10}    # closed-loop run length
ROUNDS=${ROUNDS:-3}           # closed-loop rounds per proxy (the report takes the median)
RATE=${RATE:-500}             # open-loop rate
LAT_SECS=${LAT_SECS:-20}      # latency run length
FAILOVER_SECS=${FAILOVER_SECS:-60}
STREAMS=${STREAMS:-2000}      # streamed completions per target (streaming row)
STREAM_CONC=${STREAM_CONC:-4} # streams in flight at a time
STREAM_ONLY=${STREAM_ONLY:-0} # 1: skip throughput, latency and failover
OFF=${PORT_OFFSET:-0}            # shifts every port below (another bench on the same machine)
UP_A=$((19001 + OFF)) UP_B=$((19002 + OFF)) KEEL=$((18080 + OFF)) KEEL_CTL=$((18081 + OFF))
KEEL_GW=$((18082 + OFF)) KEEL_GW_CTL=$((18083 + OFF)) NGINX=$((18090 + OFF))
KEEL_TLS=$((18084 + OFF)) KEEL_TLS_CTL=$((18085 + OFF)) NGINX_TLS=$((18091 + OFF))
OUT=bench/out/gateway
source bench/gateway/common.sh
rm -rf "$OUT"; mkdir -p "$OUT/keel" "$OUT/keel-gw" "$OUT/nginx" "$OUT/tls" "$OUT/keel-tls" "$OUT/nginx-tls"

command -v nginx >/dev/null || { echo "nginx missing: apt-get install -y nginx" >&2; exit 1; }
echo "building keel and the load generator (release)..." >&2
cargo build --release --quiet
cargo build --release --quiet --manifest-path bench/gateway/loadgen/Cargo.toml \
  --target-dir bench/out/loadgen-target
LG=bench/out/loadgen-target/release/keel-loadgen
KEEL_BIN=${BENCH_KEEL_BIN:-target/release/keel}  # another build to compare (not KEEL_*: keel reads those as config)

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for n in nginx nginx-tls; do
    [ -f "$OUT/$n/nginx.pid" ] && kill "$(cat "$OUT/$n/nginx.pid")" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT

start_upstream() { # port name -> pid
  "$LG" serve "$1" "$2" >/dev/null 2>&1 & echo $!
}

PID_A=$(start_upstream $UP_A a); pids+=("$PID_A")
PID_B=$(start_upstream $UP_B b); pids+=("$PID_B")
wait_port $UP_A; wait_port $UP_B

keel_toml "$OUT/keel/data" $KEEL_CTL $KEEL > "$OUT/keel/keel.toml"
"$KEEL_BIN" run --config "$OUT/keel/keel.toml" 2> "$OUT/keel/keel.log" & KEEL_PID=$!; pids+=("$KEEL_PID")
# A second keel for the gateway's own memory: the same gateway, the executor (and its warm
# V8 isolates) off — what a box that uses keel only as its gateway runs. Latency run only.
sed -e "s#$OUT/keel/data#$OUT/keel-gw/data#" -e "s#:$KEEL_CTL\"#:$KEEL_GW_CTL\"#" -e "s#:$KEEL\"#:$KEEL_GW\"#" \
  "$OUT/keel/keel.toml" > "$OUT/keel-gw/keel.toml"
printf '[executor]\nenabled = false\n' >> "$OUT/keel-gw/keel.toml"
"$KEEL_BIN" run --config "$OUT/keel-gw/keel.toml" 2> "$OUT/keel-gw/keel.log" & KEEL_GW_PID=$!; pids+=("$KEEL_GW_PID")

nginx_conf "$PWD/$OUT/nginx" $NGINX "worker_processes auto;" > "$OUT/nginx/nginx.conf"
nginx -p "$PWD/$OUT/nginx" -c "$PWD/$OUT/nginx/nginx.conf"

# TLS: one throwaway certificate for both proxies; keel's gateway as in keel-gw plus [proxy.tls].
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$OUT/tls/key.pem" -out "$OUT/tls/cert.pem" 2>/dev/null
sed -e "s#$OUT/keel-gw/data#$OUT/keel-tls/data#" -e "s#:$KEEL_GW_CTL\"#:$KEEL_TLS_CTL\"#" -e "s#:$KEEL_GW\"#:$KEEL_TLS\"#" \
  "$OUT/keel-gw/keel.toml" > "$OUT/keel-tls/keel.toml"
printf '[proxy.tls]\ncert = "%s"\nkey = "%s"\n' "$PWD/$OUT/tls/cert.pem" "$PWD/$OUT/tls/key.pem" >> "$OUT/keel-tls/keel.toml"
"$KEEL_BIN" run --config "$OUT/keel-tls/keel.toml" 2> "$OUT/keel-tls/keel.log" & KEEL_TLS_PID=$!; pids+=("$KEEL_TLS_PID")
nginx_conf "$PWD/$OUT/nginx-tls" $NGINX_TLS "worker_processes auto;" \
  | sed "s#listen 127.0.0.1:$NGINX_TLS;#listen 127.0.0.1:$NGINX_TLS ssl; ssl_certificate $PWD/$OUT/tls/cert.pem; ssl_certificate_key $PWD/$OUT/tls/key.pem;#" \
  > "$OUT/nginx-tls/nginx.conf"
nginx -p "$PWD/$OUT/nginx-tls" -c "$PWD/$OUT/nginx-tls/nginx.conf"

wait_port $KEEL; wait_port $KEEL_GW; wait_port $NGINX; wait_port $KEEL_TLS; wait_port $NGINX_TLS
sleep 0.5
NGINX_MASTER=$(cat "$OUT/nginx/nginx.pid")
NGINX_TLS_MASTER=$(cat "$OUT/nginx-tls/nginx.pid")

ticks() { # awk-expression pids... -> that expression of /proc/<pid>/stat fields, summed
  local expr=$1 t=0; shift
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(awk "{sub(/.*\\) /,\"\"); print $expr}" "/proc/$p/stat")))
  done
  echo $t
}
cpu_ticks() { ticks '$12 + $13' "$@"; }  # utime + stime clock ticks
user_ticks() { ticks '$12' "$@"; }       # utime only: the proxy's own code, not the kernel's
nginx_pids() { local m=${1:-$NGINX_MASTER}; echo "$m $(pgrep -P "$m" | tr '\n' ' ')"; }
rss_kib() { local t=0; for p in "$@"; do t=$((t + $(awk '/VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo $t; }

declare -A URL=([direct]="http://127.0.0.1:$UP_A/v1/messages" [keel]="http://127.0.0.1:$KEEL/v1/messages" [keel-gw]="http://127.0.0.1:$KEEL_GW/v1/messages" [nginx]="http://127.0.0.1:$NGINX/v1/messages"
                [keel-tls]="https://127.0.0.1:$KEEL_TLS/v1/messages" [nginx-tls]="https://127.0.0.1:$NGINX_TLS/v1/messages")
proxy_pids() { # target -> the processes whose CPU and memory count for it
  case $1 in
    keel) echo "$KEEL_PID";; keel-gw) echo "$KEEL_GW_PID";; keel-tls) echo "$KEEL_TLS_PID";;
    nginx) nginx_pids;; nginx-tls) nginx_pids "$NGINX_TLS_MASTER";; *) echo "$PID_A";;
  esac
}

if [ "$STREAM_ONLY" != 1 ]; then
echo "warm-up..." >&2
for t in direct keel keel-gw nginx keel-tls nginx-tls; do "$LG" closed "${URL[$t]}" 8 2 >/dev/null; done

echo "throughput: closed loop, concurrency $CONC, ${TPUT_SECS}s each, $ROUNDS rounds of keel and nginx in turn..." >&2
tput() { # target file-stem
  local t=$1 P
  P=$(proxy_pids "$t")
  local before user; before=$(cpu_ticks $P); user=$(user_ticks $P)
  "$LG" closed "${URL[$t]}" "$CONC" "$TPUT_SECS" > "$OUT/$2.json"
  echo "$(( $(cpu_ticks $P) - before ))" > "$OUT/$2.cpu"
  echo "$(( $(user_ticks $P) - user ))" > "$OUT/$2.cpu-user"
}
tput direct tput-direct
# Alternating rounds: whatever the machine's neighbours do meanwhile falls on both proxies.
for r in $(seq "$ROUNDS"); do
  tput keel "tput-keel-$r"
  tput nginx "tput-nginx-$r"
done
for r in $(seq "$ROUNDS"); do
  tput keel-tls "tput-keel-tls-$r"
  tput nginx-tls "tput-nginx-tls-$r"
done

echo "latency: open loop, $RATE rps, ${LAT_SECS}s each..." >&2
for t in direct keel keel-gw nginx keel-tls nginx-tls; do
  P=$(proxy_pids "$t")
  ( max=0; while sleep 0.5; do r=$(rss_kib $P); [ "$r" -gt "$max" ] && max=$r && echo $max > "$OUT/rss-$t.kib"; done ) & SAMPLER=$!
  "$LG" open "${URL[$t]}" "$RATE" "$LAT_SECS" > "$OUT/lat-$t.json"
  kill $SAMPLER 2>/dev/null || true; wait $SAMPLER 2>/dev/null || true
done
fi

# Streaming: OpenAI-style streamed completions (first token at once, 8 tokens 1 ms apart,
# `[DONE]`, then the chunked terminator). The time to the first content token, and how many
# connections the upstreams saw opened per 1,000 streams (a proxy that does not read a stream
# to its chunked end cannot reuse its connection: one TCP + TLS handshake per stream).
declare -A SURL=([direct]="http://127.0.0.1:$UP_A/v1/chat/completions" [keel]="http://127.0.0.1:$KEEL/v1/chat/completions" [nginx]="http://127.0.0.1:$NGINX/v1/chat/completions")
upstream_conns() { local n=0 p; for p in $UP_A $UP_B; do n=$((n + $(curl -s "http://127.0.0.1:$p/stats" | tr -dc 0-9))); done; echo $n; }
echo "streaming: $STREAMS streamed completions per target, $STREAM_CONC at a time..." >&2
for t in direct keel nginx; do
  "$LG" stream "${SURL[$t]}" "$STREAM_CONC" 200 > /dev/null  # warm-up (connections, caches)
  before=$(upstream_conns)
  "$LG" stream "${SURL[$t]}" "$STREAM_CONC" "$STREAMS" > "$OUT/stream-$t.json"
  echo "$(( $(upstream_conns) - before ))" > "$OUT/stream-$t.conns"
done

if [ "$STREAM_ONLY" != 1 ]; then

failover() { # target
  local t=$1 kill_at=$((FAILOVER_SECS / 3)) back_at=$((2 * FAILOVER_SECS / 3))
  : > "$OUT/failover-$t.metrics"
  if [ "$t" = keel ]; then
    ( while sleep 0.1; do
        n=$(curl -s "http://127.0.0.1:$KEEL_CTL/metrics" | awk -F' ' '/^keel_upstream_requests_total\{node="b",status="error"\}/{print $2}')
        echo "$(date +%s.%N) ${n:-0}" >> "$OUT/failover-$t.metrics"
      done ) & POLL=$!
  fi
  "$LG" open "${URL[$t]}" "$RATE" "$FAILOVER_SECS" "$OUT/failover-$t.csv" > "$OUT/failover-$t.json" &
  local LOAD=$!
  local t0; t0=$(date +%s.%N)
  sleep "$kill_at"
  echo "  killing node b (pid $PID_B: $(ps -o args= -p "$PID_B" || echo gone))" >&2
  kill "$PID_B"; wait "$PID_B" 2>/dev/null || true
  date +%s.%N > "$OUT/failover-$t.killed"
  sleep $((back_at - kill_at))
  PID_B=$(start_upstream $UP_B b); pids+=("$PID_B")
  date +%s.%N > "$OUT/failover-$t.restarted"
  wait $LOAD
  echo "$t0" > "$OUT/failover-$t.start"
  [ "$t" = keel ] && { kill $POLL 2>/dev/null || true; wait $POLL 2>/dev/null || true; }
  return 0
}
if [ "$FAILOVER_SECS" -gt 0 ]; then
  echo "failover: $RATE rps for ${FAILOVER_SECS}s, node b killed at 1/3 and restarted at 2/3..." >&2
  : > "$OUT/nginx/error.log"
  failover keel
  sleep 3
  failover nginx
fi
fi
cp "$OUT/keel/keel.log" "$OUT/keel-events.log"

python3 bench/gateway/report.py "$OUT" "$(getconf CLK_TCK)" | tee "$OUT/results.md"
