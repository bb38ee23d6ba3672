#!/usr/bin/env bash
# Web Push on the release server: N pushes (one device per offline user) to a fake push
# service on 127.0.0.1 answering after `delay` ms — pushes/s for one tenant-wide message —
# and the publish->frame latency (p50/p99) to an online user of M messages whose targets
# also name offline users, without and with `push` (goal: p99 with <= 1.2 x without).
# Prints figures; asserts no times.
# Usage: bash scripts/bench-push.sh [N=10000] [M=1000] [delay ms=50]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release --bin switchboard --example push_bench
target/release/examples/push_bench "${1:-10000}" "${2:-1000}" "${3:-50}"
