// The demo page's "notify me when offline" switch in headless Chromium against the real
// server:
// - push off (no VAPID keys): the switch registers /service-worker.js, then says the server
//   has no Web Push (404 from the key endpoint) and turns itself off;
// - no PushManager in the browser: it says so;
// - push on (VAPID keys): with PushManager stubbed in the page (headless Chromium reaches no
//   real push service) by a subscription with a real P-256 key and a loopback https endpoint
//   (`--dev` allows one), the library fetches the key, subscribes with it, registers the
//   device over the socket (the page shows its id), the page's publish carries `push` and is
//   accepted, and switching off removes the device on the server (DELETE of it: 404).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createECDH } from "node:crypto";
import { startBrowser, startServer } from "./server.mjs";

/** A VAPID key pair as the settings take it (base64url point and 32-byte scalar). */
function vapidKeys() {
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  const scalar = Buffer.alloc(32);
  const key = ecdh.getPrivateKey();
  key.copy(scalar, 32 - key.length);
  return {
    VAPID_PUBLIC_KEY: ecdh.getPublicKey().toString("base64url"),
    VAPID_PRIVATE_KEY: scalar.toString("base64url"),
    VAPID_SUBJECT: "mailto:demo@example.com",
  };
}

/** The demo page, token minted and connected; `init` runs in the page before its scripts. */
async function connectedDemo(browser, base, init) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error));
  if (init) await page.addInitScript(init);
  await page.goto(base + "/");
  await page.click("#mint");
  await page.waitForFunction(() => document.getElementById("token").value.split(".").length === 3);
  await page.click("#connect");
  await page.waitForFunction(() => document.getElementById("status").textContent === "open");
  await page.waitForFunction(() => !document.getElementById("push").disabled);
  return { page, errors };
}

async function pushStatus(page, pattern) {
  await page.waitForFunction(
    (source) => new RegExp(source).test(document.getElementById("push-status").textContent),
    pattern.source,
    { timeout: 15000 },
  );
  return page.textContent("#push-status");
}

test("push off on the server: the switch says so and turns itself off", { timeout: 90000 }, async () => {
  const { child, base } = await startServer();
  const chromium = await startBrowser();
  try {
    const { page, errors } = await connectedDemo(chromium.browser, base);
    await page.click("#push"); // not check(): the page may turn it off again at once
    const status = await pushStatus(page, /off on this server/);
    assert.match(status, /VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY and VAPID_SUBJECT/);
    assert.equal(await page.isChecked("#push"), false);
    assert.equal(await page.isEnabled("#push"), true, "can be tried again");
    const worker = await page.evaluate(async () => (await navigator.serviceWorker.ready).active.scriptURL);
    assert.equal(worker, base + "/service-worker.js", "the example worker is served and registered");
    assert.deepEqual(errors, []);
  } finally {
    await chromium.close();
    child.kill("SIGTERM");
  }
});

test("a browser without PushManager: the switch says so", { timeout: 90000 }, async () => {
  const { child, base } = await startServer();
  const chromium = await startBrowser();
  try {
    const { page, errors } = await connectedDemo(chromium.browser, base, () => {
      delete window.PushManager;
    });
    await page.click("#push"); // not check(): the page may turn it off again at once
    assert.match(await pushStatus(page, /PushManager/), /no Web Push/);
    assert.equal(await page.isChecked("#push"), false);
    assert.deepEqual(errors, []);
  } finally {
    await chromium.close();
    child.kill("SIGTERM");
  }
});

/** Replaces PushManager in the page: one subscription with a real P-256 key; calls logged. */
function stubPushManager() {
  const log = (window.pushLog = { subscribe: [], unsubscribed: 0 });
  let current = null;
  const base64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  PushManager.prototype.getSubscription = async () => current;
  PushManager.prototype.subscribe = async (options) => {
    const key = new Uint8Array(options.applicationServerKey);
    log.subscribe.push({ userVisibleOnly: options.userVisibleOnly, key: base64url(key) });
    const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
    const p256dh = base64url(await crypto.subtle.exportKey("raw", pair.publicKey));
    const auth = base64url(crypto.getRandomValues(new Uint8Array(16)));
    const endpoint = `https://127.0.0.1:9/push/${auth}`;
    current = {
      endpoint,
      options: { userVisibleOnly: true, applicationServerKey: key.buffer },
      toJSON: () => ({ endpoint, expirationTime: null, keys: { p256dh, auth } }),
      unsubscribe: async () => {
        log.unsubscribed++;
        current = null;
        return true;
      },
    };
    return current;
  };
}

test("push on: the switch subscribes with the server's key and registers the device; off removes it", { timeout: 90000 }, async () => {
  const keys = vapidKeys();
  const { child, base } = await startServer(keys);
  const chromium = await startBrowser();
  try {
    const { page, errors } = await connectedDemo(chromium.browser, base, stubPushManager);
    await page.click("#push"); // not check(): the page may turn it off again at once
    const status = await pushStatus(page, /^on: device /);
    const id = status.replace("on: device ", "");
    assert.match(id, /^[\w-]{1,64}$/);
    const log = await page.evaluate(() => window.pushLog);
    assert.deepEqual(log.subscribe, [{ userVisibleOnly: true, key: keys.VAPID_PUBLIC_KEY }]);

    // The page's publish now carries a push object, which this server accepts.
    await page.fill("#data", '{"with": "push"}');
    await page.click("#publish");
    await page.waitForFunction(() => /^accepted/.test(document.getElementById("published").textContent));
    await page.locator("#frames li", { hasText: '"with":"push"' }).waitFor({ timeout: 15000 });

    await page.click("#push");
    await pushStatus(page, /^off$/);
    assert.equal((await page.evaluate(() => window.pushLog)).unsubscribed, 1);
    const token = await page.inputValue("#token");
    const res = await fetch(`${base}/v1/push/subscriptions/${id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 404, "the device is gone on the server");
    assert.deepEqual(errors, []);
  } finally {
    await chromium.close();
    child.kill("SIGTERM");
  }
});
