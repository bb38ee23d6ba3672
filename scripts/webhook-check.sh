#!/usr/bin/env bash
# Checks the webhooks of `switchboard serve` with the Standard Webhooks library nobody here
# wrote (PyPI `standardwebhooks`, by the specification's authors), through README.md's own
# example receiver: a real `serve --dev` announces user.online, message.settled and
# user.offline (EVENTS_OFFLINE_DELAY_SECS=1) to it; every request verifies and matches both
# API documents (openapi/openapi.yaml's `webhooks`, openapi/asyncapi.yaml's events); the
# library refuses the first one replayed 6 minutes later, or altered
# (scripts/webhook-check.py).
# Python packages from PyPI in a venv cached under the git-ignored .cache/; the debug binary
# `cargo test` builds. Uses free ports of 127.0.0.1 only; stops what it started.
#
#   bash scripts/webhook-check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=.cache/webhook-check-venv
pins=("standardwebhooks==1.1.0" "websockets==15.0.1" "jsonschema==4.26.0" "PyYAML==6.0.3")
installed="$("$venv/bin/pip" freeze 2>/dev/null || true)"
missing=0
for pin in "${pins[@]}"; do grep -qxF "$pin" <<<"$installed" || missing=1; done
if [ "$missing" -eq 1 ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "${pins[@]}"
fi
cargo build -q --bin switchboard
"$venv/bin/python" scripts/webhook-check.py --bin target/debug/switchboard --readme README.md
