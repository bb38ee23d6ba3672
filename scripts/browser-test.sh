#!/usr/bin/env bash
# Headless Chromium test of the demo page: installs Debian's chromium when missing (never a
# browser download by a tool) and playwright-core (cached in node_modules), builds the
# binary, runs the test.
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

cd services/switchboard/tests/browser
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
npm test
