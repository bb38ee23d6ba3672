// examples/service-worker.js run as a browser runs it (a classic script, node:vm) with a
// fake registration, Cache Storage and clients: a push shows one notification with the
// payload's fields; the same id again shows nothing, also when both arrive at once; the
// remembered ids are bounded; a click focuses or opens the url.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import vm from "node:vm";

const source = readFileSync(new URL("../examples/service-worker.js", import.meta.url), "utf8");
const SCOPE = "https://app.example/";

/** Cache Storage: caches of url → response, keys in insertion order (as the spec orders them). */
function fakeCaches() {
  const stores = new Map();
  return {
    stores,
    async open(name) {
      if (!stores.has(name)) stores.set(name, new Map());
      const entries = stores.get(name);
      const url = (key) => (typeof key === "string" ? key : key.url);
      return {
        async match(key) {
          return entries.get(url(key));
        },
        async put(key, response) {
          entries.delete(url(key));
          entries.set(url(key), response);
        },
        async keys() {
          return [...entries.keys()].map((u) => ({ url: u }));
        },
        async delete(key) {
          return entries.delete(url(key));
        },
      };
    },
  };
}

/** The worker in a fresh context: its globals, the notifications shown, windows opened. */
function worker({ windows = [] } = {}) {
  const listeners = {};
  const shown = [];
  const opened = [];
  const caches = fakeCaches();
  const self = {
    registration: {
      scope: SCOPE,
      async showNotification(title, options) {
        shown.push(structuredClone({ title, ...options })); // into this realm, for deepEqual
      },
    },
    clients: {
      async matchAll() {
        return windows;
      },
      async openWindow(url) {
        opened.push(url);
      },
    },
    addEventListener(type, listener) {
      listeners[type] = listener;
    },
  };
  const context = vm.createContext({ self, caches, Response, URL, console, Promise, encodeURIComponent });
  vm.runInContext(source, context, { filename: "service-worker.js" });

  /** Dispatches a push with `payload` (an object, sent as JSON); resolves when handled. */
  function push(payload) {
    const pending = [];
    const text = typeof payload === "string" ? payload : JSON.stringify(payload);
    listeners.push({ data: { json: () => JSON.parse(text) }, waitUntil: (p) => pending.push(p) });
    return Promise.all(pending);
  }
  function click(data) {
    const pending = [];
    const notification = { data, closed: false, close() { this.closed = true; } };
    listeners.notificationclick({ notification, waitUntil: (p) => pending.push(p) });
    return Promise.all(pending).then(() => notification);
  }
  return { context, shown, opened, caches, push, click };
}

const payload = {
  id: "msg-1",
  cursor: "1700000000000-0001",
  tenant: "demo",
  title: "Build finished",
  body: "main is green",
  url: "/builds/42",
  tag: "build",
};

test("a push shows its notification: title, body, tag and data {url, id, cursor}", async () => {
  const sw = worker();
  await sw.push(payload);
  assert.deepEqual(sw.shown, [
    {
      title: "Build finished",
      body: "main is green",
      tag: "build",
      data: { url: "/builds/42", id: "msg-1", cursor: "1700000000000-0001" },
    },
  ]);
});

test("a repeated id shows one notification, also when both pushes arrive at once", async () => {
  const sw = worker();
  await sw.push(payload);
  await sw.push(payload);
  assert.equal(sw.shown.length, 1);
  await Promise.all([sw.push({ ...payload, id: "msg-2" }), sw.push({ ...payload, id: "msg-2" })]);
  assert.equal(sw.shown.length, 2, "msg-2 once");
  assert.deepEqual(
    sw.shown.map((n) => n.data.id),
    ["msg-1", "msg-2"],
  );
});

test("the dedupe record survives the worker being stopped (it lives in Cache Storage)", async () => {
  const first = worker();
  await first.push(payload);
  // A new worker instance with the same storage: module state is gone, the cache is not.
  const restarted = worker();
  restarted.context.caches.stores = first.caches.stores;
  restarted.context.caches.open = first.caches.open;
  await restarted.push(payload);
  assert.equal(restarted.shown.length, 0);
});

test("firstDelivery remembers the last SEEN_LIMIT ids: the oldest falls out", async () => {
  const sw = worker();
  const limit = sw.context.SEEN_LIMIT;
  assert.equal(limit, 200);
  for (let n = 0; n < limit + 5; n++) assert.equal(await sw.context.firstDelivery(`id-${n}`), true);
  const seen = sw.caches.stores.get(sw.context.SEEN_CACHE);
  assert.equal(seen.size, limit, "bounded");
  assert.equal(await sw.context.firstDelivery(`id-${limit + 4}`), false, "a recent id is a repeat");
  assert.equal(await sw.context.firstDelivery("id-0"), true, "id-0 fell out");
});

test("storage failing shows the notification anyway; without a tag the id is the tag", async () => {
  const sw = worker();
  sw.context.caches.open = async () => {
    throw new Error("quota");
  };
  const warn = console.warn;
  console.warn = () => {};
  try {
    await sw.push({ id: "m", tenant: "demo", body: "no title, no tag" });
    await sw.push({ id: "m", tenant: "demo", body: "no title, no tag" });
  } finally {
    console.warn = warn;
  }
  assert.equal(sw.shown.length, 2);
  assert.ok(sw.shown.every((n) => n.tag === "m" && n.title === ""), "a repeat replaces, it does not stack");
});

test("a payload that is not Switchboard's still shows a notification", async () => {
  const sw = worker();
  await sw.push("not json");
  assert.equal(sw.shown.length, 1);
  assert.equal(sw.shown[0].title, "New notification");
});

test("a click focuses a window on the url, or opens one", async () => {
  let focused = 0;
  const windows = [{ url: `${SCOPE}builds/42`, focus: async () => void focused++ }];
  const sw = worker({ windows });
  const notification = await sw.click({ url: "/builds/42", id: "msg-1" });
  assert.equal(notification.closed, true);
  assert.equal(focused, 1);
  assert.deepEqual(sw.opened, []);
  await sw.click({ url: "https://other.example/x" });
  await sw.click({});
  assert.deepEqual(sw.opened, ["https://other.example/x", SCOPE]);
});
