#!/usr/bin/env bash
# Headless Chromium tests of the demo page and the client library (and the library in Node
# with ws), against the real binary, and of the console against the AWS path (a rig on
# DynamoDB Local, started here unless DYNAMODB_ENDPOINT is set): installs Debian's chromium
# when missing (never a browser download by a tool) and playwright-core (cached in
# node_modules), builds the binaries, runs the tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x /usr/bin/chromium ]; then
    echo "browser-test: installing Debian's chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi

cargo build --bin switchboard
export SWITCHBOARD_BIN="$PWD/target/debug/switchboard"
# The console's AWS test (console-aws.test.mjs): the rig of the real publish-api and
# publisher binaries (services/lambdas/examples/console_stack), on DynamoDB Local.
cargo build -p switchboard-lambdas --bin publish-api --bin publisher --example console_stack
export CONSOLE_STACK_BIN="$PWD/target/debug/examples/console_stack"
if [ -z "${DYNAMODB_ENDPOINT:-}" ]; then
    # shellcheck source=scripts/dynamodb-local.sh
    source scripts/dynamodb-local.sh
    dynamodb_local_start
    trap dynamodb_local_stop EXIT
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

# shellcheck source=scripts/npm-deps.sh
source scripts/npm-deps.sh
npm_ci_if_changed services/switchboard/tests/browser browser-test
cd services/switchboard/tests/browser
npm test
