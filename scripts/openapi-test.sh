#!/usr/bin/env bash
# Lints the API contract in openapi/:
#   openapi.yaml  (OpenAPI 3.1: publish API, management API, operations) with @redocly/cli,
#   asyncapi.yaml (AsyncAPI 3.1: the WebSocket) with @asyncapi/cli validate.
# Zero errors and zero warnings, or it fails. Each linter is also shown a broken copy and
# must reject it, so a linter that silently checks nothing cannot pass.
# Tools install into openapi/node_modules (npm ci, skipped when it matches package-lock.json).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/openapi"
CACHE="$ROOT/.cache"
WORK="$CACHE/openapi-test"
mkdir -p "$WORK"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
# No usage analytics from the AsyncAPI CLI (and no network call for them).
export ASYNCAPI_METRICS_CONFIG_PATH="$WORK/asyncapi-analytics.json"
echo '{"analyticsEnabled":"false","infoMessageShown":"true","userID":"switchboard"}' > "$ASYNCAPI_METRICS_CONFIG_PATH"
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true

fail() { echo "openapi-test: FAILED: $*" >&2; exit 1; }
trap 'echo "openapi-test: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR
step() { echo "==> openapi-test: $*"; }

cd "$DIR"
# shellcheck source=scripts/npm-deps.sh
source "$ROOT/scripts/npm-deps.sh"
npm_ci_if_changed "$PWD" openapi-test

redocly_lint() { npx --no-install redocly lint --config redocly.yaml --format stylish "$@" 2>&1 | grep -v '[║╔╚]'; return "${PIPESTATUS[0]}"; }
asyncapi_validate() { npx --no-install asyncapi validate "$1" --fail-severity=warn --diagnostics-format=stylish; }

step "redocly lint openapi.yaml"
redocly_lint openapi.yaml || fail "openapi.yaml has lint errors"

step "asyncapi validate asyncapi.yaml"
out="$(asyncapi_validate asyncapi.yaml 2>&1)" || { echo "$out"; fail "asyncapi.yaml is invalid"; }
echo "$out" | grep -v '^\s*$'
# `validate` exits 0 on "info" findings; we want none of anything but a clean bill.
echo "$out" | grep -q "is valid! File asyncapi.yaml and referenced documents don't have governance issues" \
  || fail "asyncapi.yaml has governance findings"

step "the linters reject broken documents"
# A response schema pointing nowhere, and a channel message pointing nowhere.
sed 's|#/components/schemas/Accepted|#/components/schemas/Nope|' openapi.yaml > "$WORK/broken-openapi.yaml"
cp redocly.yaml "$WORK/redocly.yaml"
if (cd "$WORK" && npx --no-install --prefix "$DIR" redocly lint --config redocly.yaml broken-openapi.yaml > "$WORK/broken-openapi.log" 2>&1); then
  fail "redocly accepted a broken openapi.yaml"
fi
sed 's|#/components/messages/Pong|#/components/messages/Nope|' asyncapi.yaml > "$WORK/broken-asyncapi.yaml"
if asyncapi_validate "$WORK/broken-asyncapi.yaml" > "$WORK/broken-asyncapi.log" 2>&1; then
  fail "asyncapi accepted a broken asyncapi.yaml"
fi

step "OK"
