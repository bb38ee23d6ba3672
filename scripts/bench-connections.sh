#!/usr/bin/env bash
# N idle WebSocket connections against the release server: memory per connection and
# publish->frame latency; with a third argument `broadcast`, also the server's CPU per
# delivered frame for tenant-wide messages.
# Usage: bash scripts/bench-connections.sh [N=10000] [messages=300] [broadcast]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release --bin switchboard --example connections_bench
target/release/examples/connections_bench "${1:-10000}" "${2:-300}" ${3:+"$3"}
