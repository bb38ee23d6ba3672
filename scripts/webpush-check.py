"""Web Push as a browser and a push service would check it, with implementations nobody
here wrote: `http_ece` (Mozilla's RFC 8188 library, the one pywebpush uses) decrypts the
body, and `cryptography` verifies the VAPID token (RFC 8292).

It generates a subscription key pair (P-256) and an auth secret the way a browser does,
runs `cargo run -p switchboard-core --example webpush_request` — the real WebPushSender
sending one notification to the fake push service on 127.0.0.1 — and checks the captured
request:

- the headers: Content-Encoding aes128gcm, Content-Type application/octet-stream, TTL,
  Urgency, Topic;
- the body decrypts (http_ece, aes128gcm, our private key and auth secret) to the payload;
- Authorization is `vapid t=<JWT>, k=<key>`: k is the server's VAPID public key, the JWT
  is ES256 (header alg), its signature verifies with k, `aud` is the endpoint's origin,
  `exp` is in the future and at most 24 hours ahead, `sub` is the subject (mailto:/https:).

Exits non-zero with the failed check's description.
"""

import base64
import json
import os
import subprocess
import sys
import time
from urllib.parse import urlsplit

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fail(message):
    print(f"webpush-check: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def main():
    # The browser's side: a subscription key pair and an auth secret.
    private_key = ec.generate_private_key(ec.SECP256R1())
    p256dh = private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    auth = os.urandom(16)

    command = [
        "cargo", "run", "-q", "-p", "switchboard-core", "--features", "testkit",
        "--example", "webpush_request", "--", b64encode(p256dh), b64encode(auth),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    check(run.returncode == 0, f"{' '.join(command)} failed:\n{run.stderr}")
    captured = json.loads(run.stdout.strip().splitlines()[-1])
    headers = captured["headers"]

    check(headers.get("content-encoding") == "aes128gcm", f"Content-Encoding: {headers}")
    check(headers.get("content-type") == "application/octet-stream", f"Content-Type: {headers}")
    check(headers.get("ttl") == "60", f"TTL: {headers}")
    check(headers.get("urgency") == "high", f"Urgency: {headers}")
    check(headers.get("topic") == "m-check", f"Topic: {headers}")

    # The body, decrypted by http_ece (keyid and salt come from the body's header).
    body = b64decode(captured["body"])
    check(len(body) <= 4096, f"body of {len(body)} bytes is over 4096")
    plaintext = http_ece.decrypt(
        body, private_key=private_key, auth_secret=auth, version="aes128gcm"
    )
    check(
        plaintext.decode() == captured["payload"],
        f"decrypted {plaintext!r}, sent {captured['payload']!r}",
    )

    # The VAPID header.
    authorization = headers.get("authorization", "")
    check(authorization.startswith("vapid t="), f"Authorization: {authorization!r}")
    token, _, k = authorization[len("vapid t="):].partition(", k=")
    check(k == captured["vapidPublicKey"], f"k={k!r} is not the VAPID public key")
    signing_input, _, signature = token.rpartition(".")
    header_part, _, claims_part = signing_input.partition(".")
    header = json.loads(b64decode(header_part))
    claims = json.loads(b64decode(claims_part))
    check(header.get("alg") == "ES256", f"JWT header {header}")
    raw = b64decode(signature)
    check(len(raw) == 64, f"an ES256 signature is 64 bytes, not {len(raw)}")
    vapid_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64decode(k))
    try:
        vapid_key.verify(
            encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
            signing_input.encode(),
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        fail("the VAPID JWT's signature does not verify with k")
    endpoint = urlsplit(captured["endpoint"])
    origin = f"{endpoint.scheme}://{endpoint.netloc}"
    check(claims.get("aud") == origin, f"aud {claims.get('aud')!r} is not the origin {origin!r}")
    now = time.time()
    check(now < claims.get("exp", 0) <= now + 24 * 3600, f"exp {claims.get('exp')} (now {now:.0f})")
    check(claims.get("sub") == captured["subject"], f"sub {claims.get('sub')!r}")
    check(claims["sub"].startswith(("mailto:", "https:")), f"sub {claims['sub']!r}")

    print(
        "webpush-check: ok — http_ece decrypted the aes128gcm body; the VAPID JWT "
        f"(aud {origin}, exp in {(claims['exp'] - now) / 3600:.1f} h, sub {claims['sub']}) "
        "verifies with k"
    )


if __name__ == "__main__":
    main()
