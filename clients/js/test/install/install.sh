#!/usr/bin/env bash
# The library installs the way a front-end developer installs it, and building it changes
# no tracked file:
# - `npm run build` in clients/js, then `npm pack --dry-run`: the package is publishable
#   (not private, named switchboard-client) and ships dist/ and examples/ (the service worker);
# - in scratch projects (mktemp), `npm init -y` and `npm install <path>/clients/js ws`, from
#   this checkout and from a copy of clients/js's tracked files (a fresh clone: no dist/, no
#   node_modules/, so the install itself builds dist/), then consumer.mjs (`import {
#   createClient } from "switchboard-client"`, `import WebSocket from "ws"`) receives a
#   message published over HTTP by a real `switchboard serve` (debug binary, port 0, an
#   HS256 secret, a token from `switchboard token`);
# - `git status` of clients/js and the bundled copy the binary serves
#   (services/switchboard/src/serve/switchboard-client.js) is the same after as before.
#
#   bash clients/js/test/install/install.sh     (scripts/client-test.sh runs it)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
cd "$root"

say() { echo "install-test: $*" >&2; }
watched=(clients/js services/switchboard/src/serve/switchboard-client.js)
snapshot() {
    git status --porcelain --untracked-files=all -- "${watched[@]}"
    git diff -- "${watched[@]}" | sha256sum
}
before="$(snapshot)"

work="$(mktemp -d)"
# shellcheck source=scripts/serve-start.sh
source scripts/serve-start.sh
cleanup() {
    serve_stop
    rm -rf "$work"
}
trap cleanup EXIT
npm_flags=(--prefer-offline --no-audit --no-fund --loglevel=error)

say "npm run build (clients/js)"
(cd clients/js && timeout 300 npm run build --silent)

say "npm pack --dry-run (clients/js)"
(cd clients/js && timeout 300 npm pack --dry-run --json --ignore-scripts) >"$work/pack.json"
node -e '
const [pack] = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const files = pack.files.map((f) => f.path);
const want = ["package.json", "dist/index.js", "dist/index.d.ts", "dist/client.js", "examples/service-worker.js"];
const missing = want.filter((f) => !files.includes(f));
const extra = files.filter((f) => !/^(package\.json|README\.md|LICENSE|dist\/|examples\/)/.test(f));
if (pack.name !== "switchboard-client" || missing.length || extra.length) {
  console.error(`install-test: npm pack: name ${pack.name}, missing ${missing}, unexpected ${extra}`);
  process.exit(1);
}
const pkg = require(process.argv[2]);
if (pkg.private) { console.error("install-test: package.json is private"); process.exit(1); }
console.error(`install-test: npm pack: ${pack.name}@${pack.version}, ${files.length} files, ${pack.size} bytes`);
' "$work/pack.json" "$root/clients/js/package.json"

say "cargo build --bin switchboard"
cargo build --quiet --bin switchboard
bin="$root/target/debug/switchboard"
JWT_HS256_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export JWT_HS256_SECRET
RUST_LOG=warn serve_start "$work"
ws_url="$SERVE_WS"
http_base="$SERVE_HTTP"
token="$("$bin" token --tenant demo --user alice --role publisher)"

# install_and_run <label> <folder to npm install>
install_and_run() {
    local app="$work/app-$1"
    mkdir -p "$app"
    say "$1: npm install $2 ws"
    (
        cd "$app"
        npm init -y >/dev/null
        timeout 300 npm install "${npm_flags[@]}" "$2" ws@8.18.3
        cp "$here/consumer.mjs" .
        timeout 60 node consumer.mjs "$ws_url" "$http_base" "$token"
    )
}

install_and_run checkout "$root/clients/js"

# A fresh clone's clients/js: its tracked (and new, not ignored) files only.
mkdir -p "$work/clone"
git ls-files -z --cached --others --exclude-standard -- clients/js |
    xargs -0 cp --parents -t "$work/clone"
if [ -e "$work/clone/clients/js/dist" ] || [ -e "$work/clone/clients/js/node_modules" ]; then
    say "the copy of clients/js has dist/ or node_modules/: not a fresh clone's"
    exit 1
fi
install_and_run fresh-clone "$work/clone/clients/js"
if [ ! -f "$work/clone/clients/js/dist/index.js" ]; then
    say "installing the fresh clone's clients/js did not build its dist/"
    exit 1
fi

after="$(snapshot)"
if [ "$before" != "$after" ]; then
    say "building and installing the client changed tracked files:"
    diff <(echo "$before") <(echo "$after") >&2 || true
    git diff --stat -- "${watched[@]}" >&2
    exit 1
fi
say "git status of ${watched[*]}: unchanged by the build and the installs"
