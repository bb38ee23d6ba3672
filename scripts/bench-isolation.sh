#!/usr/bin/env bash
# Tenant isolation on the release server: a quiet tenant's one-user publish->frame p50/p99
# with no load, while a loud tenant drains tenant-wide messages to its N sockets, and the
# same with QUEUE_FAIRNESS=false. Prints figures; asserts no times.
# Usage: bash scripts/bench-isolation.sh [N=10000] [messages=200] [interval ms=20]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release --bin switchboard --example isolation_bench
target/release/examples/isolation_bench "${1:-10000}" "${2:-200}" "${3:-20}"
