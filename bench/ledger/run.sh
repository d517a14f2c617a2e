#!/usr/bin/env bash
# Builds keel (release) and the harness, then runs the ledger benchmark against
# redis-server (Debian package `redis-server`; installed here if missing).
# Output: stdout and bench/out/ledger-<timestamp>.txt. Bounded: ~4 × 4 phases × SECONDS
# plus the crash run.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }
cargo build --release --bin keel
cargo build --release --manifest-path bench/ledger/Cargo.toml
mkdir -p bench/out
bench/ledger/target/release/keel-ledger-bench --keel target/release/keel \
  --seconds "${SECONDS_PER_PHASE:-5}" --crash-ops "${CRASH_OPS:-10000}" \
  | tee "bench/out/ledger-$(date -u +%Y%m%dT%H%M%SZ).txt"
