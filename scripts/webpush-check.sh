#!/usr/bin/env bash
# Checks what the Web Push sender sends with implementations nobody here wrote: Python's
# http_ece decrypts the aes128gcm body and cryptography verifies the VAPID JWT (ES256
# with the k= key, aud = the push service origin, exp at most 24 h ahead, sub). The
# request is the real WebPushSender's, captured by the fake push service
# (`cargo run -p switchboard-core --example webpush_request`). Python packages from PyPI
# in a venv cached under the git-ignored .cache/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=.cache/webpush-check-venv
if ! "$venv/bin/python" -c 'import http_ece, cryptography' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "http-ece==1.2.1" "cryptography==46.0.3"
fi
"$venv/bin/python" scripts/webpush-check.py
