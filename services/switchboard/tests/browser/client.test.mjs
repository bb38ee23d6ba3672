// The client library (/switchboard-client.js) in headless Chromium against the real server:
// - messages published through the HTTP API arrive once each, also after the server closes
//   the socket (CONNECTION_TTL_SECS=5: a 1001 close every 5 s) and the library reconnects
//   with a fresh token; the query transport works too; close() leaves no connection behind;
// - a stream of 200 messages published while the library replaces its socket every 2 s
//   (the planned reconnect before API Gateway's 2-hour cap, shortened) arrives complete and
//   without duplicates: the new socket opens before the old one closes;
// - the server killed (SIGKILL) and started again on the same address: the library
//   reconnects with a token of the new process and receives what is published then.
import { test } from "node:test";
import assert from "node:assert/strict";
import { devToken, freePort, metricsUrl, publish, startBrowser, startServer } from "./server.mjs";

const TTL_SECS = 5;
const ROUNDS = 3;
const PER_ROUND = 20;

async function metric(base, name) {
  const text = await (await fetch(metricsUrl(base))).text();
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  assert.ok(line, `${name} in /metrics`);
  return Number(line.split(" ")[1]);
}

const connectionsOpened = (base) => metric(base, "switchboard_connections_opened_total");

const liveConnections = (base) => metric(base, "switchboard_connections");

test("the library reconnects after server closes and delivers every message once", { timeout: 120000 }, async () => {
  const { child, base } = await startServer({ CONNECTION_TTL_SECS: String(TTL_SECS) });
  const chromium = await startBrowser();
  try {
    const page = await chromium.browser.newPage();
    const errors = [];
    page.on("pageerror", (error) => errors.push(error));
    await page.goto(base + "/");
    await page.evaluate(async () => {
      const { createClient } = await import("/switchboard-client.js");
      const mint = async (user) => {
        const res = await fetch("/dev/token", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ tenant: "demo", user, roles: [] }),
        });
        return (await res.json()).token;
      };
      const logs = {};
      const start = (user, transport) => {
        const log = (logs[user] = { states: [], ids: [], gaps: 0, tokens: 0 });
        const client = createClient({
          url: `ws://${location.host}/main`,
          transport,
          token: () => {
            log.tokens++;
            return mint(user);
          },
        });
        client.on("state", (s) => log.states.push(s));
        client.on("message", (m) => log.ids.push(m.id));
        client.on("gap", () => log.gaps++);
        return client;
      };
      window.clients = { alice: start("alice", "subprotocol"), bob: start("bob", "query") };
      window.logs = logs;
    });
    const log = (user) => page.evaluate((u) => window.logs[u], user);
    const opens = (l) => l.states.filter((s) => s === "open").length;
    const publisher = await devToken(base, "backend", ["publisher"]);
    // Each round is published right after a socket opened, well inside its lifetime.
    await page.waitForFunction(() => window.logs.alice.states.at(-1) === "open", null, { timeout: 15000 });
    const expected = [];
    for (let round = 0; round < ROUNDS; round++) {
      const ids = Array.from({ length: PER_ROUND }, (_, i) => `r${round}-${i}`);
      for (const id of ids) {
        const status = await publish(base, publisher, {
          id,
          target: { type: "users", tenant: "demo", users: ["alice"] },
          data: { round, id },
        });
        assert.equal(status, 202);
      }
      expected.push(...ids);
      await page.waitForFunction((n) => window.logs.alice.ids.length >= n, expected.length, { timeout: 15000 });
      // The server ends the socket at its lifetime (1001); the library opens a new one.
      const before = opens(await log("alice"));
      await page.waitForFunction(
        (n) => window.logs.alice.states.filter((s) => s === "open").length > n && window.logs.alice.states.at(-1) === "open",
        before,
        { timeout: (TTL_SECS + 10) * 1000 },
      );
    }

    const alice = await log("alice");
    // Every message once (the publisher handles a batch concurrently, so the order of
    // messages without a cursor is not guaranteed).
    assert.equal(alice.ids.length, expected.length, `no duplicates: ${alice.ids.length} frames`);
    assert.deepEqual([...alice.ids].sort(), [...expected].sort());
    assert.ok(opens(alice) >= ROUNDS + 1, `reconnected after each close: ${alice.states.join(",")}`);
    assert.ok(alice.states.includes("reconnecting"));
    assert.equal(alice.states[0], "connecting");
    assert.ok(alice.tokens >= opens(alice), "a fresh token for every connection");
    assert.equal(alice.gaps, 0);

    // The query transport (?token=) delivers as well. Publish right after bob's socket has
    // (re)opened: the server ends every socket after TTL_SECS, and bob has seen no cursor to
    // resume from, so a message published while his socket is closing could be missed.
    const bobOpens = opens(await log("bob"));
    await page.waitForFunction(
      (n) => window.logs.bob.states.filter((s) => s === "open").length > n && window.logs.bob.states.at(-1) === "open",
      bobOpens,
      { timeout: (TTL_SECS + 10) * 1000 },
    );
    assert.equal(
      await publish(base, publisher, { id: "to-bob", target: { type: "users", tenant: "demo", users: ["bob"] }, data: 1 }),
      202,
    );
    await page.waitForFunction(() => window.logs.bob.ids.includes("to-bob"), null, { timeout: 15000 });

    // close(): no connection is left, and none is opened again.
    await page.evaluate(() => {
      window.clients.alice.close();
      window.clients.bob.close();
    });
    const deadline = Date.now() + 10000;
    while ((await liveConnections(base)) !== 0) {
      assert.ok(Date.now() < deadline, "connections closed after close()");
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await liveConnections(base), 0);
    assert.equal((await log("alice")).states.at(-1), "closed");
    assert.deepEqual(errors, []);
  } finally {
    await chromium.close();
    child.kill("SIGTERM");
  }
});

test("planned reconnects mid-stream lose and duplicate nothing", { timeout: 120000 }, async () => {
  const { child, base } = await startServer();
  const chromium = await startBrowser();
  try {
    const page = await chromium.browser.newPage();
    const errors = [];
    page.on("pageerror", (error) => errors.push(error));
    await page.goto(base + "/");
    await page.evaluate(async () => {
      const { createClient } = await import("/switchboard-client.js");
      const log = (window.log = { states: [], ids: [] });
      window.client = createClient({
        url: `ws://${location.host}/main`,
        lifetimeMs: 2000,
        token: async () => {
          const res = await fetch("/dev/token", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ tenant: "demo", user: "carol", roles: [] }),
          });
          return (await res.json()).token;
        },
      });
      window.client.on("state", (s) => log.states.push(s));
      window.client.on("message", (m) => log.ids.push(m.id));
    });
    await page.waitForFunction(() => window.log.states.at(-1) === "open", null, { timeout: 15000 });
    const openedBefore = await connectionsOpened(base);

    const publisher = await devToken(base, "backend", ["publisher"]);
    const expected = [];
    const started = Date.now();
    for (let n = 0; n < 200; n++) {
      const id = `n${n}`;
      const status = await publish(base, publisher, {
        id,
        target: { type: "users", tenant: "demo", users: ["carol"] },
        data: { n },
      });
      assert.equal(status, 202);
      expected.push(id);
      // About 10 s in all: five socket replacements.
      const due = started + (n + 1) * 50;
      if (Date.now() < due) await new Promise((r) => setTimeout(r, due - Date.now()));
    }
    await page.waitForFunction((n) => window.log.ids.length >= n, expected.length, { timeout: 15000 });
    await new Promise((r) => setTimeout(r, 1000)); // a duplicate would arrive by now
    const log = await page.evaluate(() => window.log);
    assert.equal(log.ids.length, expected.length, `no duplicates: ${log.ids.length} frames`);
    assert.deepEqual([...log.ids].sort(), [...expected].sort());
    assert.deepEqual(log.states, ["connecting", "open"], "planned reconnects are not visible");
    const replaced = (await connectionsOpened(base)) - openedBefore;
    assert.ok(replaced >= 3, `the socket was replaced ${replaced} times during the stream`);
    await page.evaluate(() => window.client.close());
    assert.deepEqual(errors, []);
  } finally {
    await chromium.close();
    child.kill("SIGTERM");
  }
});

test("the library reconnects to a server that was killed and started again", { timeout: 120000 }, async () => {
  const listen = `127.0.0.1:${await freePort()}`;
  let server = await startServer({}, listen);
  const chromium = await startBrowser();
  try {
    const page = await chromium.browser.newPage();
    const errors = [];
    page.on("pageerror", (error) => errors.push(error));
    await page.goto(server.base + "/");
    await page.evaluate(async () => {
      const { createClient } = await import("/switchboard-client.js");
      const log = (window.log = { states: [], ids: [] });
      window.client = createClient({
        url: `ws://${location.host}/main`,
        maxBackoffMs: 1000,
        // Dev mode: each process has its own secret, so a token must come from the one running.
        token: async () => {
          const res = await fetch("/dev/token", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ tenant: "demo", user: "gina", roles: [] }),
          });
          if (!res.ok) throw new Error(`dev token: ${res.status}`);
          return (await res.json()).token;
        },
      });
      window.client.on("state", (s) => log.states.push(s));
      window.client.on("message", (m) => log.ids.push(m.id));
    });
    const opens = () => page.evaluate(() => window.log.states.filter((s) => s === "open").length);
    await page.waitForFunction(() => window.log.states.at(-1) === "open", null, { timeout: 15000 });
    const target = { type: "users", tenant: "demo", users: ["gina"] };
    let publisher = await devToken(server.base, "backend", ["publisher"]);
    assert.equal(await publish(server.base, publisher, { id: "before", target, data: 1 }), 202);
    await page.waitForFunction(() => window.log.ids.includes("before"), null, { timeout: 15000 });

    server.child.kill("SIGKILL");
    await new Promise((resolve) => server.child.once("exit", resolve));
    await page.waitForFunction(() => window.log.states.at(-1) === "reconnecting", null, { timeout: 15000 });
    await new Promise((r) => setTimeout(r, 1500)); // a few failed attempts while it is down
    server = await startServer({}, listen);
    await page.waitForFunction(() => window.log.states.filter((s) => s === "open").length === 2, null, {
      timeout: 15000,
    });
    assert.equal(await opens(), 2);

    publisher = await devToken(server.base, "backend", ["publisher"]);
    assert.equal(await publish(server.base, publisher, { id: "after", target, data: 2 }), 202);
    await page.waitForFunction(() => window.log.ids.includes("after"), null, { timeout: 15000 });
    const log = await page.evaluate(() => window.log);
    assert.deepEqual(log.ids, ["before", "after"]);
    assert.equal(log.states.at(-1), "open");
    await page.evaluate(() => window.client.close());
    assert.deepEqual(errors, []);
  } finally {
    await chromium.close();
    server.child.kill("SIGTERM");
  }
});
