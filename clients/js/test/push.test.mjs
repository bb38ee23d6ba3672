// client.push against a fake PushManager, a fake fetch and a fake WebSocket with fake time:
// the key is fetched (or given), a subscription for the same key is reused and one for
// another key replaced, push_subscribe carries toJSON() and resolves with the device id,
// error frames, timeouts, lost sockets and close() reject, unsubscribe tells the server
// and then the browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createClient, apiUrlOf, PushError } from "../dist/index.js";
import { advance, fakeSockets, jwt, settle, START, useFakeTime } from "./fake.mjs";

// An uncompressed P-256 point's shape (0x04 + 64 bytes): what the library checks.
const KEY_BYTES = new Uint8Array(65).map((_, i) => (i === 0 ? 4 : i));
const KEY = Buffer.from(KEY_BYTES).toString("base64url");
const OTHER_BYTES = new Uint8Array(65).map((_, i) => (i === 0 ? 4 : 200 - i));
const OTHER_KEY = Buffer.from(OTHER_BYTES).toString("base64url");

/** A browser PushSubscription: `toJSON()` as browsers give it; records `unsubscribe()`. */
class FakeSubscription {
  constructor(endpoint, key) {
    this.endpoint = endpoint;
    this.options = { userVisibleOnly: true, applicationServerKey: new Uint8Array(key).buffer };
    this.unsubscribed = false;
  }
  toJSON() {
    return { endpoint: this.endpoint, expirationTime: null, keys: { p256dh: "BPub", auth: "YXV0aA" } };
  }
  async unsubscribe() {
    const was = !this.unsubscribed;
    this.unsubscribed = true;
    return was;
  }
}

/** A registration whose PushManager holds at most one subscription, as a browser's does. */
function fakeRegistration(existing = null) {
  const manager = {
    current: existing,
    subscribeCalls: [],
    async getSubscription() {
      return this.current && !this.current.unsubscribed ? this.current : null;
    },
    async subscribe(options) {
      this.subscribeCalls.push(options);
      this.current = new FakeSubscription(`https://push.example/send/${this.subscribeCalls.length}`, options.applicationServerKey);
      return this.current;
    },
  };
  return { pushManager: manager };
}

/** A fetch answering the VAPID key endpoint with `status` (200: `{"publicKey"}`). */
function fakeFetch(status = 200, publicKey = KEY) {
  const urls = [];
  const fetch = async (url) => {
    urls.push(url);
    return new Response(status === 200 ? JSON.stringify({ publicKey }) : JSON.stringify({ error: "push is not configured" }), { status });
  };
  return { fetch, urls };
}

async function setup(t, options = {}) {
  useFakeTime(t);
  const { WebSocket, sockets } = fakeSockets();
  const { fetch, urls } = fakeFetch(options.status, options.publicKey);
  const client = createClient({
    url: "ws://127.0.0.1:8080/main",
    token: async () => jwt(Math.floor(Date.now() / 1000) + 3600),
    WebSocket,
    fetch,
    ...options.client,
  });
  t.after(() => client.close());
  await settle();
  if (options.open !== false) sockets[0].open();
  return { client, sockets, urls };
}

/** Runs `promise` to completion or rejection, as a settled record (fake time stays put). */
function outcome(promise) {
  const result = { done: false };
  promise.then(
    (value) => Object.assign(result, { done: true, value }),
    (error) => Object.assign(result, { done: true, error }),
  );
  return result;
}

/** Waits (without moving fake time) until the socket has sent `count` frames with `action`; the last. */
async function sentAction(socket, action, count = 1) {
  for (let i = 0; i < 50 && socket.actions(action).length < count; i++) await settle();
  const frames = socket.actions(action);
  assert.equal(frames.length, count, `${action} sent ${count} times`);
  return frames.at(-1);
}

test("subscribe fetches the key, subscribes the browser and registers its toJSON(); resolves to the id", async (t) => {
  const { client, sockets, urls } = await setup(t);
  const registration = fakeRegistration();
  const result = outcome(client.push.subscribe(registration));
  const frame = await sentAction(sockets[0], "push_subscribe");
  assert.deepEqual(urls, ["http://127.0.0.1:8080/v1/push/vapid-public-key"]);
  const [options] = registration.pushManager.subscribeCalls;
  assert.equal(options.userVisibleOnly, true);
  assert.ok(options.applicationServerKey instanceof ArrayBuffer);
  assert.deepEqual([...new Uint8Array(options.applicationServerKey)], [...KEY_BYTES]);
  assert.deepEqual(frame, {
    action: "push_subscribe",
    subscription: { endpoint: "https://push.example/send/1", expirationTime: null, keys: { p256dh: "BPub", auth: "YXV0aA" } },
  });
  assert.equal(result.done, false, "waits for the answer");
  sockets[0].receive({ type: "push_subscribed", id: "dev-1" });
  await settle();
  assert.deepEqual(result, { done: true, value: "dev-1" });
});

test("a subscription for the same key is reused; one for another key is replaced", async (t) => {
  const { client, sockets } = await setup(t);
  await t.test("same key", async () => {
    const same = new FakeSubscription("https://push.example/send/kept", KEY_BYTES);
    const registration = fakeRegistration(same);
    const result = outcome(client.push.subscribe(registration));
    const frame = await sentAction(sockets[0], "push_subscribe");
    assert.equal(frame.subscription.endpoint, "https://push.example/send/kept");
    assert.deepEqual(registration.pushManager.subscribeCalls, [], "no new subscription");
    sockets[0].receive({ type: "push_subscribed", id: "kept" });
    await settle();
    assert.equal(result.value, "kept");
    assert.equal(same.unsubscribed, false);
  });
  await t.test("other key", async () => {
    const stale = new FakeSubscription("https://push.example/send/stale", OTHER_BYTES);
    const registration = fakeRegistration(stale);
    const result = outcome(client.push.subscribe(registration));
    await sentAction(sockets[0], "push_subscribe", 2);
    assert.equal(stale.unsubscribed, true, "the browser refuses a second key: the old one goes");
    assert.equal(registration.pushManager.subscribeCalls.length, 1);
    assert.equal(sockets[0].actions("push_subscribe")[1].subscription.endpoint, "https://push.example/send/1");
    sockets[0].receive({ type: "push_subscribed", id: "fresh" });
    await settle();
    assert.equal(result.value, "fresh");
  });
});

test("a key given in the options is used without fetching; apiUrl moves the fetch", async (t) => {
  const { client, sockets, urls } = await setup(t, { client: { apiUrl: "https://api.example/" } });
  const registration = fakeRegistration();
  const given = outcome(client.push.subscribe(registration, { vapidPublicKey: KEY }));
  await sentAction(sockets[0], "push_subscribe");
  assert.deepEqual(urls, [], "nothing fetched");
  sockets[0].receive({ type: "push_subscribed", id: "d" });
  await settle();
  assert.equal(given.value, "d");
  const fetched = outcome(client.push.subscribe(fakeRegistration()));
  await sentAction(sockets[0], "push_subscribe", 2);
  assert.deepEqual(urls, ["https://api.example/v1/push/vapid-public-key"]);
  sockets[0].receive({ type: "push_subscribed", id: "e" });
  await settle();
  assert.equal(fetched.value, "e");
  assert.equal(apiUrlOf("wss://h.example:8443/main?x=1"), "https://h.example:8443");
});

test("push off on the server (404 from the key endpoint): not_configured, nothing subscribed", async (t) => {
  const { client, sockets } = await setup(t, { status: 404 });
  const registration = fakeRegistration();
  await assert.rejects(client.push.subscribe(registration), (error) => {
    assert.ok(error instanceof PushError);
    assert.equal(error.code, "not_configured");
    assert.match(error.message, /not configured.*404 from http:\/\/127\.0\.0\.1:8080\/v1\/push\/vapid-public-key/);
    return true;
  });
  assert.deepEqual(registration.pushManager.subscribeCalls, []);
  assert.deepEqual(sockets[0].actions("push_subscribe"), []);
});

test("no PushManager (or a malformed key): a PushError says so before anything else", async (t) => {
  const { client, urls } = await setup(t);
  await assert.rejects(client.push.subscribe({}), { name: "PushError", code: "unsupported" });
  await assert.rejects(client.push.subscribe(fakeRegistration(), { vapidPublicKey: "c2hvcnQ" }), {
    code: "key_unavailable",
  });
  assert.deepEqual(urls, []);
});

test("an error frame rejects with its code and message", async (t) => {
  const { client, sockets } = await setup(t);
  const result = outcome(client.push.subscribe(fakeRegistration()));
  await sentAction(sockets[0], "push_subscribe");
  sockets[0].receive({ type: "error", error: "bad_request", message: "subscription.endpoint: must be https" });
  await settle();
  assert.ok(result.error instanceof PushError);
  assert.equal(result.error.code, "bad_request");
  assert.equal(result.error.message, "subscription.endpoint: must be https");
});

test("no answer within timeoutMs rejects with timeout; a late answer changes nothing", async (t) => {
  const { client, sockets } = await setup(t, { client: { timeoutMs: 2000, keepAliveMs: 60_000 } });
  const result = outcome(client.push.subscribe(fakeRegistration()));
  await sentAction(sockets[0], "push_subscribe");
  await advance(1950);
  assert.equal(result.done, false);
  await advance(100);
  assert.equal(result.error?.code, "timeout");
  sockets[0].receive({ type: "push_subscribed", id: "late" });
  await settle();
  assert.equal(result.value, undefined);
  assert.equal(client.state, "open", "the socket is not blamed");
});

test("a call made before the socket opens goes out when it opens", async (t) => {
  const { client, sockets } = await setup(t, { open: false });
  const result = outcome(client.push.subscribe(fakeRegistration(), { vapidPublicKey: KEY }));
  for (let i = 0; i < 10; i++) await settle();
  assert.deepEqual(sockets[0].actions("push_subscribe"), []);
  sockets[0].open();
  await sentAction(sockets[0], "push_subscribe");
  sockets[0].receive({ type: "push_subscribed", id: "after-open" });
  await settle();
  assert.equal(result.value, "after-open");
});

test("the socket lost before the answer rejects with connection_lost; close() with closed", async (t) => {
  const { client, sockets } = await setup(t);
  const lost = outcome(client.push.subscribe(fakeRegistration(), { vapidPublicKey: KEY }));
  await sentAction(sockets[0], "push_subscribe");
  sockets[0].serverClose(1001);
  await settle();
  assert.equal(lost.error?.code, "connection_lost");
  const closed = outcome(client.push.subscribe(fakeRegistration(), { vapidPublicKey: KEY }));
  for (let i = 0; i < 10; i++) await settle();
  client.close();
  await settle();
  assert.equal(closed.error?.code, "closed");
  await assert.rejects(client.push.subscribe(fakeRegistration(), { vapidPublicKey: KEY }), { code: "closed" });
});

test("an error frame answers the oldest waiting request: a resume's stays with the resume", async (t) => {
  const { client, sockets } = await setup(t, { client: { since: `${START}-0001` } });
  assert.equal(sockets[0].actions("resume").length, 1);
  const result = outcome(client.push.subscribe(fakeRegistration(), { vapidPublicKey: KEY }));
  await sentAction(sockets[0], "push_subscribe");
  sockets[0].receive({ type: "error", error: "unknown_action" }); // the resume's (no history)
  await settle();
  assert.equal(result.done, false);
  sockets[0].receive({ type: "error", error: "unknown_action" }); // push_subscribe's (no push)
  await settle();
  assert.equal(result.error?.code, "unknown_action");
});

/** An open client whose browser subscribed and registered as device `id`. */
async function subscribedAs(t, id) {
  const { client, sockets } = await setup(t);
  const registration = fakeRegistration();
  const subscribed = outcome(client.push.subscribe(registration, { vapidPublicKey: KEY }));
  await sentAction(sockets[0], "push_subscribe");
  sockets[0].receive({ type: "push_subscribed", id });
  await settle();
  assert.equal(subscribed.value, id);
  return { client, sockets, registration };
}

test("unsubscribe removes the device on the server, then unsubscribes the browser", async (t) => {
  const { client, sockets, registration } = await subscribedAs(t, "dev-9");
  const subscription = registration.pushManager.current;

  const result = outcome(client.push.unsubscribe());
  const frame = await sentAction(sockets[0], "push_unsubscribe");
  assert.deepEqual(frame, { action: "push_unsubscribe", id: "dev-9" });
  assert.equal(subscription.unsubscribed, false, "the server is told first");
  sockets[0].receive({ type: "push_unsubscribed" });
  await settle();
  await settle();
  assert.deepEqual(result, { done: true, value: true });
  assert.equal(subscription.unsubscribed, true);
});

test("unsubscribe: a server error still ends the browser subscription, then rejects", async (t) => {
  const { client, sockets, registration } = await subscribedAs(t, "dev-1");
  const result = outcome(client.push.unsubscribe());
  await sentAction(sockets[0], "push_unsubscribe");
  sockets[0].receive({ type: "error", error: "devices_unavailable" });
  for (let i = 0; i < 5; i++) await settle();
  assert.equal(result.error?.code, "devices_unavailable");
  assert.equal(registration.pushManager.current.unsubscribed, true);
});

test("unsubscribe: unknown_device (already pruned) counts as done", async (t) => {
  const { client, sockets, registration } = await subscribedAs(t, "dev-2");
  const result = outcome(client.push.unsubscribe());
  await sentAction(sockets[0], "push_unsubscribe");
  sockets[0].receive({ type: "error", error: "unknown_device" });
  for (let i = 0; i < 5; i++) await settle();
  assert.deepEqual(result, { done: true, value: true });
  assert.equal(registration.pushManager.current.unsubscribed, true);
});

test("unsubscribe with no device registered by this client ends the registration's subscription only", async (t) => {
  const { client, sockets } = await setup(t);
  const existing = new FakeSubscription("https://push.example/send/old", KEY_BYTES);
  assert.equal(await client.push.unsubscribe(fakeRegistration(existing)), true);
  assert.equal(existing.unsubscribed, true);
  assert.equal(await client.push.unsubscribe(fakeRegistration()), false, "nothing to end");
  assert.equal(await client.push.unsubscribe(), false);
  assert.deepEqual(sockets[0].actions("push_unsubscribe"), []);
});
