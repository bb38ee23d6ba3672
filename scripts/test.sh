#!/usr/bin/env bash
# Switchboard's one test command: installs what the tests need (idempotently, cached under
# the git-ignored .cache/ and node_modules/), starts DynamoDB Local on a free port, and runs
# every suite: the Rust workspace (unit, contract, end-to-end), the TypeScript client, the
# browser tests (demo page, client library), the infra (CDK) tests and the API contract
# checks. Stops what it started.
#
#   bash scripts/test.sh            # everything
#   SKIP_INFRA=1 SKIP_BROWSER=1 bash scripts/test.sh   # Rust only (still with DynamoDB Local)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n== %s\n' "$*"; }

command -v java >/dev/null 2>&1 || { echo "java is required for DynamoDB Local (install a JDK 17+)" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "npm is required (Node.js 20+)" >&2; exit 1; }

# shellcheck source=scripts/dynamodb-local.sh
source scripts/dynamodb-local.sh
say "DynamoDB Local"
dynamodb_local_install
dynamodb_local_start
trap dynamodb_local_stop EXIT
export DYNAMODB_ENDPOINT
echo "DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT"

say "Rust tests (cargo test --workspace)"
cargo test --workspace --all-targets

say "Smoke test of a deployment (scripts/smoke-aws.sh against switchboard serve)"
bash scripts/smoke-serve.sh

say "TypeScript client (clients/js)"
bash scripts/client-test.sh

if [ -z "${SKIP_BROWSER:-}" ]; then
    say "Browser tests (demo page, client library)"
    bash scripts/browser-test.sh
fi

if [ -z "${SKIP_INFRA:-}" ]; then
    say "Infra tests (CDK)"
    bash scripts/infra-test.sh
    say "API contract (OpenAPI, AsyncAPI)"
    bash scripts/openapi-test.sh
    say "Server responses against the OpenAPI document (schemathesis)"
    bash scripts/schemathesis.sh
fi

say "All suites passed"
