#!/usr/bin/env bash
# Before/after in one run: two keel binaries and the Node peer, the `require` blocks of
# load.js measured in rounds that alternate before, after and Node, so the machine's load
# (a shared 2-core box) weighs on all three alike. Prints each round and the median.
#   bench/executor/compare.sh BEFORE_BIN AFTER_BIN
#   ROUNDS=3 SECONDS_PER=4 CONC=2 POOL=2 BLOCKS="lodash xlsx" bench/executor/compare.sh old/keel target/release/keel
# AFTER_EXECUTOR adds lines to the after keel's [executor] table, so one binary can be
# compared with itself under another setting:
#   AFTER_EXECUTOR="reuse_contexts = true" bench/executor/compare.sh target/release/keel target/release/keel
# Also prints each binary's context medians (one isolate, as run.sh measures them).
set -euo pipefail
cd "$(dirname "$0")/../.."
BEFORE=$1
AFTER=$2
SECS=${SECONDS_PER:-4}
CONC=${CONC:-2}
POOL=${POOL:-2}
ROUNDS=${ROUNDS:-3}
BLOCKS=${BLOCKS:-trivial lodash dayjs xlsx lodash_crypto all_libs}
TMP=$(mktemp -d)
# keels are started in command substitutions (not this shell's jobs): their pids are in files.
trap 'kill $(jobs -p) $(cat "$TMP"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$TMP"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 600); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.01; done; return 1; }

start_keel() { # NAME BIN POOL [EXECUTOR LINES] -> prints the port; the pid goes to $TMP/NAME.pid
  local p; p=$(port)
  mkdir -p "$TMP/$1"
  cat > "$TMP/$1/keel.toml" <<TOML
data_dir = "$TMP/$1/data"
[control]
listen = "127.0.0.1:$p"
admin_token = "bench-admin-token"
[proxy]
listen = "127.0.0.1:$(port)"
[log]
level = "warn"
[executor]
pool_size = $3
max_concurrent = 1024
access_tokens = ["bench-token-123"]
${4:-}
[executor.rate_limit]
enabled = false
TOML
  "$2" run --config "$TMP/$1/keel.toml" >"$TMP/$1/log" 2>&1 &
  echo $! > "$TMP/$1.pid"
  wait_up "http://127.0.0.1:$p/flow/health" || { cat "$TMP/$1/log" >&2; exit 1; }
  echo "$p"
}
rps() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(round(d["rps"]) if d["errors"] == 0 else "ERR")' "$1"; }

BPORT=$(start_keel before "$BEFORE" "$POOL")
APORT=$(start_keel after "$AFTER" "$POOL" "${AFTER_EXECUTOR:-}")
NPORT=$(port)
node bench/executor/node-peer.js "$NPORT" & NPID=$!
wait_up "http://127.0.0.1:$NPORT/"

declare -A ALL
echo "before: $BEFORE; after: $AFTER ${AFTER_EXECUTOR:+($AFTER_EXECUTOR)}; node $(node --version); pool $POOL, concurrency $CONC, ${SECS}s per block, $ROUNDS rounds; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| %-14s | %5s | %8s | %8s | %8s | %6s | %6s |\n' block round before after node 'b/node' 'a/node'
for r in $(seq 1 "$ROUNDS"); do
  for block in $BLOCKS; do
    b=$(rps "$(node bench/executor/load.js "http://127.0.0.1:$BPORT/flow/codeblock" bench-token-123 "$SECS" "$CONC" "$block")")
    a=$(rps "$(node bench/executor/load.js "http://127.0.0.1:$APORT/flow/codeblock" bench-token-123 "$SECS" "$CONC" "$block")")
    n=$(rps "$(node bench/executor/load.js "http://127.0.0.1:$NPORT/" x "$SECS" "$CONC" "$block")")
    ALL[$block]="${ALL[$block]:-} $b:$a:$n"
    printf '| %-14s | %5s | %8s | %8s | %8s | %6s | %6s |\n' "$block" "$r" "$b" "$a" "$n" \
      "$(python3 -c "print(round($b/$n, 2))")" "$(python3 -c "print(round($a/$n, 2))")"
  done
done
echo "medians over the rounds (req/s; the ratios are medians of each round's ratio):"
for block in $BLOCKS; do
  python3 - "$block" ${ALL[$block]} <<'PY'
import statistics, sys
block, rows = sys.argv[1], [tuple(float(x) for x in r.split(':')) for r in sys.argv[2:]]
med = lambda xs: statistics.median(xs)
b, a, n = (med([r[i] for r in rows]) for i in range(3))
print(f"| {block:<14} | median | {b:8.0f} | {a:8.0f} | {n:8.0f} | {med([r[0]/r[2] for r in rows]):6.2f} | {med([r[1]/r[2] for r in rows]):6.2f} |")
PY
done
kill "$(cat "$TMP/before.pid")" "$(cat "$TMP/after.pid")" $NPID; rm "$TMP/before.pid" "$TMP/after.pid"; sleep 1

# Context medians on a one-isolate keel of each binary (the executor reports its figures at
# most every 250 ms: each call is read 0.3 s later, as run.sh does).
ctx_median() { python3 bench/executor/ctx_median.py "$1" "$2" "$3" 15; } # PORT CODE FIELD
echo "context medians (ms, one isolate): | which | lean | lodash | lodash + crypto-js | common | xlsx |"
for which in before after; do
  bin=$BEFORE; [ $which = after ] && bin=$AFTER
  p=$(start_keel "${which}1" "$bin" 1)
  echo "| $which | $(ctx_median "$p" 'return 1' lastContextCreationMs) | $(ctx_median "$p" "return typeof require('lodash')" lastContextWithLibrariesMs) | $(ctx_median "$p" "return typeof require('lodash') + typeof require('crypto-js')" lastContextWithLibrariesMs) | $(ctx_median "$p" "return typeof require('lodash') + typeof require('qs') + typeof require('dayjs')" lastContextWithLibrariesMs) | $(ctx_median "$p" "return typeof require('xlsx')" lastContextWithLibrariesMs) |"
  kill "$(cat "$TMP/${which}1.pid")"; rm "$TMP/${which}1.pid"; sleep 1
done
