#!/usr/bin/env bash
# Switchboard's one test command: installs what the tests need (idempotently, cached under
# the git-ignored .cache/ and node_modules/), starts DynamoDB Local on a free port, and runs
# every suite: the Rust workspace (unit, contract, end-to-end), the TypeScript client, the
# operator console, the browser tests (demo page, client library, console, the console on
# the AWS path), the infra (CDK) tests and the API contract checks. Stops what it started.
#
#   bash scripts/test.sh            # everything
#   SKIP_INFRA=1 SKIP_BROWSER=1 bash scripts/test.sh   # Rust only (still with DynamoDB Local)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n== %s\n' "$*"; }

# Every missing or too-old tool at once, with what to install (README.md, "Prerequisites").
# shellcheck source=scripts/prerequisites.sh
source scripts/prerequisites.sh

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

say "Web Push against implementations nobody here wrote (http_ece, cryptography)"
bash scripts/webpush-check.sh

say "Webhooks against a library nobody here wrote (standardwebhooks), through README's receiver"
bash scripts/webhook-check.sh

say "Newcomer check (README.md \"Try it\", run as written)"
bash scripts/newcomer-check.sh

say "Smoke test of a deployment (scripts/smoke-aws.sh against switchboard serve)"
bash scripts/smoke-serve.sh

say "TypeScript client (clients/js)"
bash scripts/client-test.sh

say "Operator console (console/): types, unit tests, the committed bundle, its size"
bash scripts/console-test.sh

if [ -z "${SKIP_BROWSER:-}" ]; then
    say "Browser tests (demo page, client library, operator console on serve and on the AWS path)"
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
