#!/usr/bin/env bash
# The operator console (console/): npm ci when its lock changed, then tsc (strict, the
# client library's sources included), the unit tests (node --test: API errors and 401,
# receipt progress and its polling with fake timers, the data editor's JSON check, the
# envelope of each target type, usage buckets as chart series), the check that the bundle
# committed in services/switchboard/src/console/assets/ matches the sources, and the
# bundle's size (console.js + console.css minified + gzipped, Preact and uPlot included;
# the goal is at most 102,400 bytes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/npm-deps.sh
source scripts/npm-deps.sh
npm_ci_if_changed console console-test
(cd console && npm test)
