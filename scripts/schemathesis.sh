#!/usr/bin/env bash
# Checks the real server's responses against openapi/openapi.yaml: starts the debug
# `switchboard serve` on a free port, connects one WebSocket client (tenant acme, user
# alice: the presence paths' examples, so their answers list a live connection), mints an
# admin token, and runs schemathesis (from PyPI, in a venv cached under .cache/) with
# bounded examples over every path, presence included. Fails on any 5xx or any response
# that does not conform to the document.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=.cache/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ] || ! "$venv/bin/python" -c 'import websockets' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==4.32.5" "websockets==15.0.1"
fi

cargo build --bin switchboard
bin=target/debug/switchboard
export JWT_HS256_SECRET="schemathesis-contract-check-secret-0123456789"
export RUST_LOG=warn
work=$(mktemp -d)
# shellcheck source=scripts/serve-start.sh
source scripts/serve-start.sh
client=
client_log="$work/client.log"
trap 'serve_stop; kill ${client:-} 2>/dev/null || true; rm -rf "$work"' EXIT
serve_start "$work" || exit 1
addr="${SERVE_HTTP#http://}"
management="${SERVE_MANAGEMENT#http://}"
admin=$("$bin" token --tenant acme --user contract-admin --role admin --ttl 1h)

# A live connection for the presence answers to list: alice of acme, held open (reading
# whatever arrives) until the script ends.
alice=$("$bin" token --tenant acme --user alice --ttl 1h)
"$venv/bin/python" - "ws://$addr/main?token=$alice" >"$client_log" 2>&1 <<'PY' &
import asyncio, json, sys
import websockets

async def main():
    async with websockets.connect(sys.argv[1], open_timeout=10) as ws:
        await ws.send(json.dumps({"action": "whoami"}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        print("connected", reply["connectionId"], flush=True)
        async for _ in ws:
            pass

asyncio.run(main())
PY
client=$!
for _ in $(seq 1 100); do
    grep -q '^connected ' "$client_log" && break
    sleep 0.1
done
grep -q '^connected ' "$client_log" || { echo "schemathesis: the WebSocket client did not connect" >&2; cat "$client_log" >&2; exit 1; }
# The presence endpoints see it (the fuzzing below checks shapes, this checks content).
curl -fsS --max-time 10 -H "Authorization: Bearer $admin" "http://$addr/v1/tenants/acme/users/alice/presence" \
    | "$venv/bin/python" -c 'import json, sys; p = json.load(sys.stdin); assert p["online"] and len(p["connections"]) == 1, p' \
    || { echo "schemathesis: GET /v1/tenants/acme/users/alice/presence does not show the connected client" >&2; exit 1; }

# One worker: hypothesis's lambda introspection is not thread-safe (seen here as an
# "AST constructor recursion depth mismatch" runtime error with two workers).
# Two passes: the public listener (everything but @connections) and the management
# listener (@connections only).
"$venv/bin/schemathesis" run openapi/openapi.yaml \
    --url "http://$management" \
    --include-tag management \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples 40 \
    --workers 1 \
    --seed 1
"$venv/bin/schemathesis" run openapi/openapi.yaml \
    --url "http://$addr" \
    --exclude-tag management \
    --header "Authorization: Bearer $admin" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples 40 \
    --workers 1 \
    --seed 1
