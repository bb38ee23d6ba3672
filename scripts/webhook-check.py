"""Webhook deliveries of `switchboard serve` as a backend would check them, with the Standard
Webhooks library nobody here wrote (PyPI `standardwebhooks`, by the specification's authors).

    python scripts/webhook-check.py --bin target/debug/switchboard [--readme README.md]

The receiver is README.md's own example (the ```python block of "## Tell your backend what
happened", executed as written, its `Receiver` handler serving a free port of 127.0.0.1),
so the README's example is what verifies every request here. Around it the check records
each request's raw headers and body and verifies it once more itself. Then:

1. starts `switchboard serve --dev` on free ports with `WEBHOOK_URL` = the receiver's
   `/hooks`, a fresh `WEBHOOK_SECRET` (`whsec_` + 32 random bytes) and
   `EVENTS_OFFLINE_DELAY_SECS=1`;
2. opens a WebSocket for `demo`/`alice` with a `/dev/token` token → `user.online`
   (`connections` 1, `version` 1);
3. publishes a message to alice over HTTP; the frame arrives → `message.settled` (the receipt:
   `delivered`, `matched` 1, `delivered` 1);
4. closes the socket → `user.offline` (`connections` 0, `version` 2) no sooner than 1 s
   after the close; and no other delivery;
5. every request: POST to `/hooks`, `content-type: application/json`, `user-agent:
   switchboard/…`, `webhook-id` = the body's `id`, a `webhook-timestamp` within a minute,
   verified by the library; its body and `webhook-*` headers valid against both API
   documents: openapi/openapi.yaml's `webhooks` and openapi/asyncapi.yaml's event messages
   (`jsonschema`);
6. the first captured request again, to the library: verified now; refused
   (`WebhookVerificationError`, "too old") with the library's clock 6 minutes ahead (its
   tolerance is 5 minutes); refused with one byte of the body changed, with the timestamp
   moved by a second, and with another secret.

Exits 0 with a one-line summary, 1 with the failed check's description.
"""

import argparse
import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import types
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import ThreadingHTTPServer
from unittest import mock

import jsonschema
import standardwebhooks.webhooks
import yaml
from standardwebhooks import Webhook, WebhookVerificationError
from websockets.sync.client import connect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README_SECTION = "## Tell your backend what happened"
TENANT, USER, MESSAGE_ID = "demo", "alice", "webhook-check-1"
OFFLINE_DELAY_SECS = 1
WAIT_SECS = 15
# No proxy for 127.0.0.1, whatever the environment says.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Failed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failed(message)


def readme_receiver(readme_path):
    """README.md's example receiver, executed as written (its `__main__` part excepted)."""
    with open(readme_path, encoding="utf-8") as f:
        text = f.read()
    start = text.find("\n" + README_SECTION + "\n")
    check(start >= 0, f'{readme_path}: no "{README_SECTION}" section')
    block = re.search(r"\n```python\n(.*?)\n```\n", text[start:], re.DOTALL)
    check(block is not None, f'{readme_path}: no ```python block in "{README_SECTION}"')
    module = types.ModuleType("readme_receiver")
    exec(compile(block.group(1), f"{readme_path} ({README_SECTION})", "exec"), module.__dict__)
    check(hasattr(module, "Receiver"), "README's receiver defines no `Receiver` handler")
    return module


class Recorder:
    """What reached the receiver: raw requests, and what README's handler made of them."""

    def __init__(self, secret):
        self.webhook = Webhook(secret)
        self.lock = threading.Lock()
        self.requests = []  # {"at","method","path","headers","body","status","event","own"}

    def wait_for(self, kind, since=0.0):
        deadline = time.monotonic() + WAIT_SECS
        while time.monotonic() < deadline:
            with self.lock:
                for request in self.requests:
                    check(
                        not isinstance(request["own"], Exception),
                        f"a {request['type']} delivery did not verify with standardwebhooks: {request['own']!r}",
                    )
                    if request["at"] >= since and request["type"] == kind:
                        return request
            time.sleep(0.05)
        raise Failed(f"no {kind} delivery within {WAIT_SECS} s; got {self.summary()}")

    def summary(self):
        with self.lock:
            return [(r["type"], r["status"]) for r in self.requests] or "nothing"


def recording_handler(module, recorder):
    """README's `Receiver`, with the raw request and the answer recorded around it."""

    class Recording(module.Receiver):
        def do_POST(self):
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length)
            request = {
                "at": time.monotonic(),
                "method": "POST",
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
                "status": None,
                "event": None,
                "own": None,
                "type": None,
            }
            try:
                request["type"] = json.loads(body).get("type")
            except (ValueError, AttributeError):
                pass
            try:
                request["own"] = recorder.webhook.verify(body, dict(self.headers))
            except WebhookVerificationError as e:
                request["own"] = e
            self.rfile = io.BytesIO(body)  # README's handler reads the body again
            self._request = request
            try:
                super().do_POST()
            finally:
                with recorder.lock:
                    recorder.requests.append(request)

        def send_response(self, code, message=None):
            self._request["status"] = code
            super().send_response(code, message)

        def handle_event(self, event):
            self._request["event"] = event
            super().handle_event(event)

        def log_message(self, format, *args):
            pass

    return Recording


def start_serve(binary, webhook_url, secret, log_path):
    env = dict(os.environ)
    for name in list(env):
        if name.startswith(("JWT_", "WEBHOOK_", "EVENTS_", "TENANTS_FILE", "VAPID_")):
            del env[name]
    env.update(
        WEBHOOK_URL=webhook_url,
        WEBHOOK_SECRET=secret,
        EVENTS_OFFLINE_DELAY_SECS=str(OFFLINE_DELAY_SECS),
        RUST_LOG=env.get("RUST_LOG", "warn"),
    )
    log = open(log_path, "wb")
    serve = subprocess.Popen(
        [binary, "serve", "--dev", "--listen", "127.0.0.1:0", "--management-listen", "127.0.0.1:0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
    )
    lines = []
    found = {}

    def read():
        for raw in iter(serve.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            m = re.match(r"switchboard listening on (http://\S+) \(WebSocket (ws://[^)]+)\)$", line)
            if m:
                found["http"], found["ws"] = m.group(1), m.group(2)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 30
    while "ws" not in found and time.monotonic() < deadline and serve.poll() is None:
        time.sleep(0.05)
    if "ws" not in found:
        stop_serve(serve)
        log.close()
        with open(log_path, encoding="utf-8", errors="replace") as f:
            raise Failed(f"serve printed no address (exit {serve.returncode}):\n{f.read()[-3000:]}")
    return serve, found["http"], found["ws"]


def stop_serve(serve):
    if serve.poll() is None:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=15)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()


def post_json(url, body, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    with HTTP.open(request, timeout=10) as answer:
        return answer.status, json.loads(answer.read())


def contracts(openapi_path, asyncapi_path):
    """For each event type and each API document: a validator of the body and one of the
    `webhook-*` headers. openapi.yaml: its `webhooks` (JSON Schema 2020-12); asyncapi.yaml:
    the `events` channel's messages, by `name` (JSON Schema draft 7, AsyncAPI's base)."""
    with open(openapi_path, encoding="utf-8") as f:
        openapi = yaml.safe_load(f)
    with open(asyncapi_path, encoding="utf-8") as f:
        asyncapi = yaml.safe_load(f)

    def validator(document, schema, draft):
        # `$ref`s like #/components/schemas/X resolve against the whole document.
        return draft(dict(schema, components=document["components"]), format_checker=jsonschema.FormatChecker())

    found = {}
    for kind, item in openapi.get("webhooks", {}).items():
        operation = item["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        headers = {"type": "object", "required": [], "properties": {}}
        for parameter in operation.get("parameters", []):
            if "$ref" in parameter:
                parameter = openapi["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
            headers["required"].append(parameter["name"])
            headers["properties"][parameter["name"]] = parameter["schema"]
        v = jsonschema.Draft202012Validator
        found.setdefault(kind, []).append(("openapi.yaml", validator(openapi, body, v), validator(openapi, headers, v)))
    for message in asyncapi["components"]["messages"].values():
        if "headers" in message and message.get("name") in found:
            v = jsonschema.Draft7Validator
            found[message["name"]].append(
                ("asyncapi.yaml", validator(asyncapi, message["payload"], v), validator(asyncapi, message["headers"], v))
            )
    for kind, documents in found.items():
        check(len(documents) == 2, f"{kind} is not described in both openapi.yaml and asyncapi.yaml")
    return found


def check_contract(request, contract):
    kind = request["type"]
    check(kind in contract, f"the API documents describe no event {kind!r}")
    for document, body, headers in contract[kind]:
        errors = [e.message for e in body.iter_errors(request["own"])]
        check(not errors, f"{kind}: the body does not match {document}: {errors}")
        errors = [e.message for e in headers.iter_errors(request["headers"])]
        check(not errors, f"{kind}: the webhook-* headers do not match {document}: {errors}")


def check_request(request):
    kind = request["type"]
    headers = request["headers"]
    check(request["path"] == "/hooks", f"{kind}: POST to {request['path']!r}, not /hooks")
    check(
        not isinstance(request["own"], Exception),
        f"a delivery did not verify with standardwebhooks: {request['own']!r}; headers {headers}",
    )
    check(request["status"] == 204, f"{kind}: README's receiver answered {request['status']}")
    check(request["event"] == request["own"], f"{kind}: README's receiver got {request['event']!r}")
    check(
        headers.get("content-type", "").split(";")[0].strip() == "application/json",
        f"{kind}: content-type {headers.get('content-type')!r}",
    )
    check(headers.get("user-agent", "").startswith("switchboard/"), f"{kind}: user-agent {headers.get('user-agent')!r}")
    event = request["own"]
    check(headers.get("webhook-id") == event.get("id"), f"{kind}: webhook-id {headers.get('webhook-id')!r} is not the body's id {event.get('id')!r}")
    check(re.fullmatch(r"evt_[A-Za-z0-9_-]{22}", event.get("id", "")), f"{kind}: id {event.get('id')!r}")
    check(set(event) == {"id", "type", "timestamp", "data"}, f"{kind}: fields {sorted(event)}")
    sent = int(headers["webhook-timestamp"])
    check(abs(sent - time.time()) < 60, f"{kind}: webhook-timestamp {sent} is not now ({time.time():.0f})")
    stamp = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
    check(abs(stamp.timestamp() - time.time()) < 60, f"{kind}: timestamp {event['timestamp']!r} is not now")


def check_replays(first, secret):
    """The library refuses what an attacker could send: the same request later, or altered."""
    webhook = Webhook(secret)
    body, headers = first["body"], dict(first["headers"])
    webhook.verify(body, headers)

    real = standardwebhooks.webhooks.datetime
    check(real is datetime, "standardwebhooks.webhooks no longer reads the clock through `datetime`")

    class SixMinutesLater(datetime):
        @classmethod
        def now(cls, tz=None):
            return real.now(tz) + timedelta(minutes=6)

    with mock.patch.object(standardwebhooks.webhooks, "datetime", SixMinutesLater):
        try:
            webhook.verify(body, headers)
            raise Failed("a request replayed 6 minutes later verified (tolerance is 5 minutes)")
        except WebhookVerificationError as e:
            check("too old" in str(e), f"the 6-minute replay was refused for {e!r}, not its age")

    altered = body.replace(b'"user.', b'"user:', 1) if b'"user.' in body else body + b" "
    check(altered != body, "could not alter the body")
    refused(webhook, altered, headers, "a changed body")
    moved = dict(headers, **{"webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)})
    refused(webhook, body, moved, "a timestamp moved by one second")
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    refused(Webhook(other), body, headers, "another secret")


def refused(webhook, body, headers, what):
    try:
        webhook.verify(body, headers)
    except WebhookVerificationError:
        return
    raise Failed(f"{what} still verified")


def run(binary, readme, api, work):
    contract = contracts(os.path.join(api, "openapi.yaml"), os.path.join(api, "asyncapi.yaml"))
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    os.environ["WEBHOOK_SECRET"] = secret  # README's receiver reads it
    recorder = Recorder(secret)
    module = readme_receiver(readme)
    server = ThreadingHTTPServer(("127.0.0.1", 0), recording_handler(module, recorder))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hooks = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    serve = None
    try:
        serve, http_base, ws_url = start_serve(binary, hooks, secret, os.path.join(work, "serve.err"))
        _, answer = post_json(f"{http_base}/dev/token", {"tenant": TENANT, "user": USER, "roles": ["publisher"]})
        token = answer["token"]

        with connect(f"{ws_url}?token={token}", proxy=None, open_timeout=10) as socket:
            socket.send('{"action":"whoami"}')
            whoami = json.loads(socket.recv(timeout=10))
            check(whoami.get("user") == USER, f"whoami answered {whoami}")
            online = recorder.wait_for("user.online")

            status, _ = post_json(
                f"{http_base}/v1/messages",
                {"id": MESSAGE_ID, "target": {"type": "users", "tenant": TENANT, "users": [USER]}, "data": {"hello": "webhooks"}},
                token,
            )
            check(status == 202, f"publish answered {status}")
            frame = json.loads(socket.recv(timeout=10))
            check(frame.get("id") == MESSAGE_ID, f"the socket got {frame}, not the message")
            settled = recorder.wait_for("message.settled")
            closed_at = time.monotonic()
        offline = recorder.wait_for("user.offline", since=closed_at)
        waited = offline["at"] - closed_at
        time.sleep(OFFLINE_DELAY_SECS + 0.5)  # nothing else may follow

        with recorder.lock:
            requests = list(recorder.requests)
        for request in requests:
            check_request(request)
            check_contract(request, contract)
        kinds = sorted(r["type"] or "?" for r in requests)
        check(kinds == ["message.settled", "user.offline", "user.online"], f"deliveries: {kinds} (expected one of each)")

        on, off, receipt = online["own"]["data"], offline["own"]["data"], settled["own"]["data"]
        check(on == {"tenant": TENANT, "user": USER, "connections": 1, "version": 1}, f"user.online data {on}")
        check(off == {"tenant": TENANT, "user": USER, "connections": 0, "version": 2}, f"user.offline data {off}")
        check(waited >= OFFLINE_DELAY_SECS, f"user.offline came {waited:.2f} s after the close, before the {OFFLINE_DELAY_SECS} s delay")
        check(
            receipt.get("id") == MESSAGE_ID and receipt.get("tenant") == TENANT and receipt.get("status") == "delivered"
            and receipt.get("matched") == 1 and receipt.get("delivered") == 1,
            f"message.settled data {receipt}",
        )
        check(len({r["own"]["id"] for r in requests}) == 3, "two deliveries share an id")

        check_replays(requests[0], secret)
    finally:
        if serve is not None:
            stop_serve(serve)
        server.shutdown()
    return waited


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True, help="the switchboard binary")
    parser.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    parser.add_argument("--api", default=os.path.join(ROOT, "openapi"), help="the folder of openapi.yaml, asyncapi.yaml")
    parser.add_argument("--work", default=None, help="folder for serve's log")
    args = parser.parse_args()
    work = args.work or os.path.join(ROOT, ".cache", "webhook-check")
    os.makedirs(work, exist_ok=True)
    try:
        waited = run(args.bin, args.readme, args.api, work)
    except Failed as e:
        print(f"webhook-check: FAILED: {e}", file=sys.stderr)
        log = os.path.join(work, "serve.err")
        if os.path.exists(log):
            with open(log, encoding="utf-8", errors="replace") as f:
                tail = f.read()[-3000:]
            if tail:
                print(f"webhook-check: serve's log (end):\n{tail}", file=sys.stderr)
        sys.exit(1)
    print(
        "webhook-check: ok — README's standardwebhooks receiver verified user.online (v1), "
        f"message.settled (delivered) and user.offline (v2, {waited:.1f} s after the close), "
        "each as openapi.yaml and asyncapi.yaml describe it; "
        "the library refused the first request replayed 6 minutes later, with a changed body, "
        "a moved timestamp and another secret"
    )


if __name__ == "__main__":
    main()
