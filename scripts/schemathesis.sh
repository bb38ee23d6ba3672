#!/usr/bin/env bash
# Checks the real server's responses against openapi/openapi.yaml: starts the debug
# `switchboard serve` on a free port, mints an admin token, and runs schemathesis (from
# PyPI, in a venv cached under .cache/) with bounded examples. Fails on any 5xx or any
# response that does not conform to the document.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=.cache/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==4.32.5"
fi

cargo build --bin switchboard
bin=target/debug/switchboard
export JWT_HS256_SECRET="schemathesis-contract-check-secret-0123456789"
export RUST_LOG=warn
log=$(mktemp)
"$bin" serve --listen 127.0.0.1:0 --management-listen 127.0.0.1:0 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
    addr=$(sed -n 's/^switchboard listening on http:\/\/\([^ ]*\).*/\1/p' "$log")
    management=$(sed -n 's/^switchboard management API on http:\/\/\([^/ ]*\).*/\1/p' "$log")
    [ -n "$addr" ] && [ -n "$management" ] && break
    sleep 0.1
done
[ -n "${addr:-}" ] || { echo "schemathesis: server did not start" >&2; cat "$log" >&2; exit 1; }
admin=$("$bin" token --tenant acme --user contract-admin --role admin --ttl 1h)

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
