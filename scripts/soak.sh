#!/usr/bin/env bash
# Soak: C connections (every tenth never reads) against the release server, messages
# published at a steady rate for a while; prints the accounting of every message, the
# server's RSS at start and end, and publish->frame latency to the reading clients.
# Usage: bash scripts/soak.sh [connections=2000] [seconds=300] [rate=100] [payload=512]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release --bin switchboard --example soak
target/release/examples/soak "${1:-2000}" "${2:-300}" "${3:-100}" "${4:-512}"
