#!/usr/bin/env bash
# Smoke test of a real deployment: the AWS stack, or `switchboard serve` (CI runs it against
# serve through scripts/smoke-serve.sh, unchanged). Prints a pass/fail table, one row per
# check with its time; exits 1 when a check fails ("skip" rows do not fail: they were not
# checked). The checks and their pass criteria are listed at the top of
# scripts/smoke/smoke.mjs: connect + whoami (query token and bearer subprotocol),
# $disconnect leaving the roster (and, on AWS, zero errors of the disconnect function),
# frames of exactly 128,000 and 131,072 bytes, a tenant fan-out over N sockets with its
# receipt, and resume after a reconnect.
#
#   scripts/smoke-aws.sh <websocket-url> <publish-api-url>   # stack outputs WebSocketUrl, PublishUrl
#   scripts/smoke-aws.sh outputs.json                        # cdk deploy --outputs-file outputs.json
#
# Tokens come from `switchboard token`, so it reads the same settings:
#   SMOKE_KEY=<private key file>   sign ES256 with `switchboard token --key` (the key whose JWKS
#                                  the deployment verifies: `switchboard keys generate`), or
#   JWT_HS256_SECRET=<secret>      sign HS256 (serve only: the stack verifies a JWKS);
#   JWT_ISSUER, JWT_AUDIENCE, TENANT_CLAIM, ROLES_CLAIM   when the deployment requires them.
# Optional:
#   SWITCHBOARD_BIN                the binary (default: `switchboard` on PATH, else
#                                  target/release/switchboard, else target/debug/switchboard)
#   SMOKE_TENANT                   tenant of the run (default smoke-<random>); the fan-out uses
#                                  <tenant>-fanout, which must hold no other connections
#   SMOKE_FANOUT_CONNECTIONS       sockets of the fan-out (default 40). Deploy with a tiny shard
#                                  size (-c fanoutShardSize=1; serve: FANOUT_SHARD_SIZE=1) so
#                                  that is 40 pages, past Lambda's 16-hop loop detection.
#   SMOKE_DISCONNECT_FUNCTION      the disconnect Lambda's name: its CloudWatch `Errors` over the
#                                  run must be 0 (needs the aws CLI and credentials; waits up to
#                                  SMOKE_METRICS_WAIT_SECS, default 300, for the metrics)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
if [ -z "${SMOKE_KEY:-}" ] && [ -z "${JWT_HS256_SECRET:-}" ]; then
    echo "smoke-aws: set SMOKE_KEY (a private key file, switchboard keys generate) or JWT_HS256_SECRET" >&2
    exit 2
fi
if [ -z "${SWITCHBOARD_BIN:-}" ]; then
    for candidate in "$(command -v switchboard || true)" "$root/target/release/switchboard" "$root/target/debug/switchboard"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then SWITCHBOARD_BIN="$candidate"; break; fi
    done
fi
if [ -z "${SWITCHBOARD_BIN:-}" ]; then
    echo "smoke-aws: no switchboard binary: cargo build --release --bin switchboard, or set SWITCHBOARD_BIN" >&2
    exit 2
fi
export SWITCHBOARD_BIN

# shellcheck source=scripts/npm-deps.sh
source "$root/scripts/npm-deps.sh"
npm_ci_if_changed "$root/scripts/smoke" smoke >&2
exec node "$root/scripts/smoke/smoke.mjs" "$@"
