#!/usr/bin/env bash
# Headless Chromium tests of the demo page and the client library (and the library in Node
# with ws), against the real binary: installs Debian's chromium when missing (never a
# browser download by a tool) and playwright-core (cached in node_modules), builds the
# binary, runs the tests.
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
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

# shellcheck source=scripts/npm-deps.sh
source scripts/npm-deps.sh
npm_ci_if_changed services/switchboard/tests/browser browser-test
cd services/switchboard/tests/browser
npm test
