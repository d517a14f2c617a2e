#!/usr/bin/env bash
# Executor benchmark: keel (V8 isolates from a snapshot) vs a Node.js peer
# (vm.runInNewContext, same libraries preloaded), side by side in one run.
#   bench/executor/run.sh            # uses target/release/keel (builds it if missing)
#   BENCH_KEEL_BIN=target/debug/keel SECONDS_PER=5 CONC=8 bench/executor/run.sh
# Needs node and src/executor/js/node_modules (cd src/executor/js && npm ci) for the peer.
set -euo pipefail
cd "$(dirname "$0")/../.."
BENCH_KEEL_BIN=${BENCH_KEEL_BIN:-target/release/keel}
SECS=${SECONDS_PER:-5}
CONC=${CONC:-8}
POOL=${POOL:-2}
[ -x "$BENCH_KEEL_BIN" ] || cargo build --release
[ -d src/executor/js/node_modules ] || (cd src/executor/js && npm ci --no-audit --no-fund)
TMP=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
wait_up() { for _ in $(seq 1 600); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.01; done; return 1; }

start_keel() { # pool -> sets KPORT KPID KSTART_MS
  KPORT=$(port)
  mkdir -p "$TMP/k$1"
  cat > "$TMP/k$1/keel.toml" <<TOML
data_dir = "$TMP/k$1/data"
[control]
listen = "127.0.0.1:$KPORT"
admin_token = "bench-admin-token"
[proxy]
listen = "127.0.0.1:$(port)"
[log]
level = "warn"
[executor]
pool_size = $1
max_concurrent = 1024
access_tokens = ["bench-token-123"]
[executor.rate_limit]
enabled = false
TOML
  local t0; t0=$(now_ms)
  "$BENCH_KEEL_BIN" run --config "$TMP/k$1/keel.toml" >"$TMP/k$1/log" 2>&1 &
  KPID=$!
  wait_up "http://127.0.0.1:$KPORT/flow/health" || { cat "$TMP/k$1/log"; exit 1; }
  KSTART_MS=$(( $(now_ms) - t0 ))
}
# keel's RSS includes its executor process (user code runs in a child of the same binary).
rss_kb() { local t=0 p; for p in "$1" $(pgrep -P "$1"); do t=$(( t + $(awk '/VmRSS/ {print $2}' "/proc/$p/status") )); done; echo $t; }

start_keel 1; RSS1=$(rss_kb $KPID); kill $KPID; wait $KPID 2>/dev/null || true
start_keel 8; RSS8=$(rss_kb $KPID); kill $KPID; wait $KPID 2>/dev/null || true
start_keel "$POOL"
NPORT=$(port); t0=$(now_ms)
node bench/executor/node-peer.js "$NPORT" & NPID=$!
wait_up "http://127.0.0.1:$NPORT/"; NSTART_MS=$(( $(now_ms) - t0 ))
NRSS0=$(rss_kb $NPID)

declare -A R
for block in trivial lodash dayjs xlsx lodash_crypto all_libs cpu; do
  R[keel_$block]=$(node bench/executor/load.js "http://127.0.0.1:$KPORT/flow/codeblock" bench-token-123 "$SECS" "$CONC" $block)
  R[node_$block]=$(node bench/executor/load.js "http://127.0.0.1:$NPORT/" x "$SECS" "$CONC" $block)
done
# Context creation: /flow/health reports the last context each worker made (slowest
# worker), so measure on a keel with one isolate (with two, the idle worker's figure from an
# earlier block would be reported); the median over 20 sequential calls of each kind, each
# read 0.3 s after its call (the executor process sends its figures every 250 ms).
kill $KPID; wait $KPID 2>/dev/null || true
start_keel 1
ctx_median() { python3 bench/executor/ctx_median.py "$KPORT" "$1" "$2" 20; } # CODE FIELD -> median ms or "-"
KCTX=$(ctx_median "return 1" lastContextCreationMs)
KCTXL=$(ctx_median "return typeof require('lodash')" lastContextWithLibrariesMs)
KCTXP=$(ctx_median "return typeof require('lodash') + typeof require('crypto-js')" lastContextWithLibrariesMs)
KCTXC=$(ctx_median "return typeof require('lodash') + typeof require('qs') + typeof require('dayjs')" lastContextWithLibrariesMs)
KCTXX=$(ctx_median "return typeof require('xlsx')" lastContextWithLibrariesMs)
KREQ=$(python3 -c "print('-' if '-' in ('$KCTX', '$KCTXL') else round($KCTXL - $KCTX, 3))")
NSTAT=$(curl -s "http://127.0.0.1:$NPORT/")
NCTX=$(echo "$NSTAT" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["contextMs"],3))')

f() { echo "$1" | python3 -c "import json,sys; d=json.load(sys.stdin); print(f\"{d['$2']:.3f}\" if isinstance(d['$2'], float) else d['$2'])"; }
echo
echo "keel: $BENCH_KEEL_BIN, pool_size=$POOL; node $(node --version) vm.runInNewContext; concurrency $CONC, ${SECS}s per block; $(nproc) cores"
printf '| %-34s | %12s | %12s |\n' metric keel node
printf '|%s|%s|%s|\n' ------------------------------------ -------------- --------------
for block in trivial lodash dayjs xlsx lodash_crypto all_libs; do
  for m in p50 p99; do
    printf '| %-34s | %12s | %12s |\n' "$block $m latency (ms)" "$(f "${R[keel_$block]}" $m)" "$(f "${R[node_$block]}" $m)"
  done
  printf '| %-34s | %12s | %12s |\n' "$block throughput (req/s)" "$(f "${R[keel_$block]}" rps)" "$(f "${R[node_$block]}" rps)"
done
printf '| %-34s | %12s | %12s |\n' "cpu-heavy throughput (req/s)" "$(f "${R[keel_cpu]}" rps)" "$(f "${R[node_cpu]}" rps)"
printf '| %-34s | %12s | %12s |\n' "cpu-heavy p50 (ms)" "$(f "${R[keel_cpu]}" p50)" "$(f "${R[node_cpu]}" p50)"
printf '| %-34s | %12s | %12s |\n' "startup to warm (ms)" "$KSTART_MS" "$NSTART_MS"
printf '| %-34s | %12s | %12s |\n' "fresh context, lean (ms, median)" "$KCTX" "$NCTX"
printf '| %-34s | %12s | %12s |\n' "context, lodash only (ms, median)" "$KCTXL" "n/a (shared)"
printf '| %-34s | %12s | %12s |\n' "require of lodash (ms, = above - lean)" "$KREQ" "0 (shared)"
printf '| %-34s | %12s | %12s |\n' "context, lodash + crypto-js (ms, median)" "$KCTXP" "n/a (shared)"
printf '| %-34s | %12s | %12s |\n' "context, common modules (ms, median)" "$KCTXC" "n/a (shared)"
printf '| %-34s | %12s | %12s |\n' "context, xlsx (ms, median)" "$KCTXX" "n/a (shared)"
printf '| %-34s | %12s | %12s |\n' "RSS per extra isolate (MiB)" "$(( (RSS8 - RSS1) / 7 / 1024 ))" "n/a (1 process)"
printf '| %-34s | %12s | %12s |\n' "RSS at start (MiB; keel pool=1)" "$(( RSS1 / 1024 ))" "$(( NRSS0 / 1024 ))"
echo
bench/executor/hot_paths.sh "$KPORT" bench-token-123
for k in "${!R[@]}"; do echo "$k ${R[$k]}" | grep -q '"errors":0' || echo "WARNING: $k had errors: ${R[$k]}"; done
