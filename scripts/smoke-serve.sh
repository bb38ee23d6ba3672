#!/usr/bin/env bash
# CI for scripts/smoke-aws.sh: runs it, unchanged, against `switchboard serve` configured the
# way a deployed stack is (tokens verified from a JWKS made by `switchboard keys generate`,
# an issuer and an audience required) with FANOUT_SHARD_SIZE=1, so the 40-socket fan-out is
# 40 pages. Uses the debug binary `cargo test` builds; both listeners on free ports (port 0,
# read back from what serve prints). Stops the server it started.
#
#   bash scripts/smoke-serve.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cargo build --bin switchboard
bin="$root/target/debug/switchboard"
work="$(mktemp -d)"
# shellcheck source=scripts/serve-start.sh
source scripts/serve-start.sh
cleanup() {
    serve_stop
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" keys generate --out "$work/keys" >/dev/null
export JWT_ISSUER="https://smoke.switchboard.test"
export JWT_AUDIENCE="switchboard-smoke"

JWT_JWKS_FILE="$work/keys/jwks.json" FANOUT_SHARD_SIZE=1 RUST_LOG="${RUST_LOG:-warn}" \
    serve_start "$work"
ws_url="$SERVE_WS"
http_base="$SERVE_HTTP"
echo "smoke-serve: switchboard serve at $http_base (WebSocket $ws_url)" >&2

status=0
SMOKE_KEY="$work/keys/private-key.pem" SWITCHBOARD_BIN="$bin" \
    bash scripts/smoke-aws.sh "$ws_url" "$http_base/v1/messages" || status=$?
# The fan-out must have been a chain of pages: with FANOUT_SHARD_SIZE=1 its N sockets take
# N - 1 continuation work items (counted with the publishes in switchboard_enqueued_total).
fanout="${SMOKE_FANOUT_CONNECTIONS:-40}"
# `/metrics` is on the management listener.
management_base="$SERVE_MANAGEMENT"
enqueued="$(curl -sf "$management_base/metrics" | awk '/^switchboard_enqueued_total /{print $2}')"
if [ "$status" -eq 0 ] && [ "${enqueued%.*}" -lt $((fanout - 1 + 4)) ]; then
    echo "smoke-serve: only ${enqueued} queue messages: the fan-out did not run page by page" >&2
    status=1
else
    echo "smoke-serve: ${enqueued} queue messages (4 or 5 publishes, the fan-out's $((fanout - 1)) continuation pages and any retries)" >&2
fi
if [ "$status" -ne 0 ]; then
    echo "smoke-serve: failed; serve's log:" >&2
    tail -n 50 "$work/serve.err" >&2
fi
exit "$status"
