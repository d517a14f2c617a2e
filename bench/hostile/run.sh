#!/usr/bin/env bash
# Hostile-user replay (see run.py): every case of the blast-radius issue against the
# release binary, loopback only, bounded. Prints a table and "RESULT: pass|FAIL".
#   bench/hostile/run.sh
#   BENCH_KEEL_BIN=target/debug/keel bench/hostile/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export BENCH_KEEL_BIN=${BENCH_KEEL_BIN:-target/release/keel}
[ -x "$BENCH_KEEL_BIN" ] || cargo build --release
exec python3 bench/hostile/run.py
