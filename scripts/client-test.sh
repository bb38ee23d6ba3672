#!/usr/bin/env bash
# The TypeScript client (clients/js): npm ci when its lock changed, then tsc, the unit tests
# (node --test, fake WebSocket and fake timers), the check that the bundle committed for the
# demo page matches the sources, and the bundle size (minified + gzipped); then the install
# test (clients/js/test/install/install.sh): `npm install <path>/clients/js ws` in scratch
# projects, `import { createClient } from "switchboard-client"` receiving a message from a
# real `switchboard serve`, and `npm run build` changing no tracked file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/npm-deps.sh
source scripts/npm-deps.sh
npm_ci_if_changed clients/js client-test
(cd clients/js && npm test)
bash clients/js/test/install/install.sh
