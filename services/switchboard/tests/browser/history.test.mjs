// The client library (/switchboard-client.js) in headless Chromium against `switchboard serve`
// with history (docs/design.md: History and resume), issue 12's acceptance runs:
// - the server killed (SIGKILL) and started again on the same address, with the DynamoDB roster
//   and history (fresh tables in DynamoDB Local, so history survives the restart), while a
//   publisher sends 200 numbered messages alternately to the user and to the tenant; 20 of
//   them are recorded by the old process while the page is offline, so only the old
//   process's history has them: the page ends with all 200, each once, without a gap, each
//   stream in cursor order;
// - CONNECTION_TTL_SECS and IDLE_TIMEOUT_SECS of a few seconds (memory history) and a
//   keep-alive shorter than the idle timeout: 60 s of steady publishing loses and duplicates
//   nothing, and sockets end at their lifetime, not for being idle.
// DYNAMODB_ENDPOINT must be set (scripts/test.sh starts DynamoDB Local): without it the first
// test fails, it is never skipped.
import { test } from "node:test";
import assert from "node:assert/strict";
import { freePort, metricsUrl, publish, startBrowser, startServer } from "./server.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const USER = "hana";
const TENANT = "demo";
const targets = {
  user: { type: "users", tenant: TENANT, users: [USER] },
  tenant: { type: "tenant", tenant: TENANT },
};

/** A dev-mode token from the server at `base`; throws when it cannot get one. */
async function devToken(base, user, roles = []) {
  const res = await fetch(base + "/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tenant: TENANT, user, roles }),
  });
  if (res.status !== 200) throw new Error(`dev token: ${res.status}`);
  return (await res.json()).token;
}

/** A backend that publishes through the HTTP API, retrying (with a token of the running
 *  process) until the message is accepted: the server may be down or starting. */
function publisher(base) {
  let token;
  return async function send(envelope) {
    const deadline = Date.now() + 30000;
    for (;;) {
      let status;
      try {
        token ??= await devToken(base, "backend", ["publisher"]);
        status = await publish(base, token, envelope);
        if (status === 202 || status === 200) return; // 200: accepted before (a receipt exists)
        if (status === 401) token = undefined; // a new process has a new dev secret
      } catch (error) {
        status = String(error); // down: connection refused or reset
        token = undefined;
      }
      assert.ok(Date.now() < deadline, `message ${envelope.id} accepted within 30 s (last: ${status})`);
      await sleep(100);
    }
  };
}

/** The n-th numbered message: even to the user, odd to the tenant (two history streams). */
function numbered(n) {
  const stream = n % 2 === 0 ? "user" : "tenant";
  return { id: `${stream}-${n}`, target: targets[stream], data: { stream, n } };
}

/** Opens the page and starts the library in it with `options`; records everything. */
async function startPage(chromium, base, options) {
  const page = await chromium.browser.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error));
  await page.goto(base + "/");
  await page.evaluate(
    async ({ user, tenant, options }) => {
      const { createClient } = await import("/switchboard-client.js");
      const log = (window.log = { states: [], messages: [], gaps: 0 });
      window.client = createClient({
        url: `ws://${location.host}/main`,
        ...options,
        // Dev mode: each process has its own secret, so a token must come from the one running.
        token: async () => {
          const res = await fetch("/dev/token", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ tenant, user, roles: [] }),
          });
          if (!res.ok) throw new Error(`dev token: ${res.status}`);
          return (await res.json()).token;
        },
      });
      window.client.on("state", (s) => log.states.push(s));
      window.client.on("message", (m) => log.messages.push({ id: m.id, cursor: m.cursor, data: m.data }));
      window.client.on("gap", () => log.gaps++);
    },
    { user: USER, tenant: TENANT, options },
  );
  await page.waitForFunction(() => window.log.states.at(-1) === "open", null, { timeout: 15000 });
  return { page, errors, received: () => page.evaluate(() => window.log.messages.length) };
}

async function metric(base, name) {
  const text = await (await fetch(metricsUrl(base))).text();
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  assert.ok(line, `${name} in /metrics`);
  return Number(line.split(" ")[1]);
}

/** Every one of `count` numbered messages once, each with a cursor. */
function assertWhole(messages, count) {
  const ids = messages.map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length, `no duplicates among ${ids.length} messages`);
  const expected = Array.from({ length: count }, (_, n) => numbered(n).id);
  const missing = expected.filter((id) => !ids.includes(id));
  assert.deepEqual(missing, [], "no message lost");
  assert.equal(ids.length, count, "nothing but the published messages");
  assert.ok(messages.every((m) => typeof m.cursor === "string"), "every message has a cursor");
}

/** Pairs of adjacent messages of one stream that arrived out of cursor order. */
function outOfOrder(messages) {
  const late = [];
  for (const stream of ["user", "tenant"]) {
    const got = messages.filter((m) => m.data.stream === stream);
    for (let i = 1; i < got.length; i++) {
      if (got[i].cursor <= got[i - 1].cursor) late.push(`${got[i - 1].id} ${got[i - 1].cursor} then ${got[i].id} ${got[i].cursor}`);
    }
  }
  return late;
}

// `serve`'s in-process queue hands out one message per stream group at a time (docs/design.md:
// The one-machine binary), and the library holds live frames while a resume is answered and
// hands them out in cursor order: each stream arrives in cursor order.
async function checkOrder(t, messages) {
  const late = outOfOrder(messages);
  t.diagnostic(`${late.length} adjacent pairs out of cursor order${late.length ? ": " + late.slice(0, 3).join("; ") : ""}`);
  assert.deepEqual(late, [], "each stream in cursor order");
}

test("history: the server killed and restarted mid-stream; 200 messages on two streams arrive once each", { timeout: 90000 }, async (t) => {
  const endpoint = process.env.DYNAMODB_ENDPOINT;
  assert.ok(
    endpoint,
    "DYNAMODB_ENDPOINT is not set: this test needs DynamoDB Local so that history survives the restart " +
      '(eval "$(bash scripts/dynamodb-local.sh start)"; scripts/test.sh starts it)',
  );
  const suffix = `${process.pid}-${Date.now()}`;
  const env = {
    DYNAMODB_ENDPOINT: endpoint,
    ROSTER_TABLE: `BrowserRoster-${suffix}`,
    HISTORY_TABLE: `BrowserHistory-${suffix}`,
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
    AWS_REGION: "us-east-1",
    // Chromium's offline mode blocks new sockets but leaves an open one alone: the server
    // ends it within this lifetime.
    CONNECTION_TTL_SECS: "3",
  };
  const listen = `127.0.0.1:${await freePort()}`;
  const launch = () => startServer(env, listen, { args: ["--roster", "dynamodb"] });
  let server = await launch();
  const base = server.base;
  const chromium = await startBrowser();
  let restarted;
  try {
    const { page, errors, received } = await startPage(chromium, base, { maxBackoffMs: 1000 });
    const send = publisher(base);
    const COUNT = 200;
    const KILL_AT = 80;
    const OFFLINE = 20;
    const started = Date.now();
    for (let n = 0; n < COUNT; n++) {
      if (n === KILL_AT) {
        // The page goes offline (its socket ends at its lifetime; no new one opens), the old process records OFFLINE messages
        // it cannot deliver, then it is killed (SIGKILL) once they are recorded (fanned out:
        // the in-process queue holds nothing a SIGKILL could lose) and started again a second
        // later while the publisher keeps retrying. The page gets the OFFLINE messages only
        // from the old process's history, by resume.
        await page.waitForFunction((k) => window.log.messages.length >= k, KILL_AT, { timeout: 15000 });
        await chromium.browser.setOffline(true);
        await page.waitForFunction(() => window.log.states.at(-1) === "reconnecting", null, { timeout: 15000 });
        for (; n < KILL_AT + OFFLINE; n++) await send(numbered(n));
        const deadline = Date.now() + 15000;
        while ((await metric(base, "switchboard_fanout_duration_seconds_count")) < KILL_AT + OFFLINE) {
          assert.ok(Date.now() < deadline, "the old process recorded and fanned out every accepted message");
          await sleep(50);
        }
        const dead = server.child;
        dead.kill("SIGKILL");
        await new Promise((resolve) => (dead.exitCode !== null || dead.signalCode !== null ? resolve() : dead.once("exit", resolve)));
        await chromium.browser.setOffline(false);
        restarted = sleep(1000).then(async () => {
          server = await launch();
        });
      }
      await send(numbered(n));
      const due = started + (n + 1) * 40; // about 8 s of publishing
      if (Date.now() < due) await sleep(due - Date.now());
    }
    await restarted;
    await page.waitForFunction((c) => window.log.messages.length >= c, COUNT, { timeout: 30000 }).catch(async () => {
      assert.fail(`only ${await received()} of ${COUNT} messages arrived`);
    });
    await sleep(1000); // a duplicate would arrive by now
    const log = await page.evaluate(() => window.log);
    assertWhole(log.messages, COUNT);
    assert.equal(log.gaps, 0, "the resume after the restart was complete");
    assert.ok(log.states.includes("reconnecting"), `the page saw the server go: ${log.states.join(",")}`);
    assert.equal(log.states.at(-1), "open");
    await checkOrder(t, log.messages);
    await page.evaluate(() => window.client.close());
    assert.deepEqual(errors, []);
  } finally {
    await chromium.close();
    await restarted?.catch(() => {});
    server.child.kill("SIGTERM");
  }
});

test("history: 60 s with sockets ended every few seconds (lifetime, idle timeout) lose and duplicate nothing", { timeout: 100000 }, async (t) => {
  const TTL_SECS = 5;
  const IDLE_SECS = 3;
  const RUN_MS = 60000;
  const { child, base } = await startServer({
    CONNECTION_TTL_SECS: String(TTL_SECS),
    IDLE_TIMEOUT_SECS: String(IDLE_SECS),
  });
  const chromium = await startBrowser();
  try {
    // Keep-alive well inside the idle timeout; a backoff cap of 1 s (sockets never live the
    // 10 s after which the backoff resets).
    const { page, errors, received } = await startPage(chromium, base, { keepAliveMs: 1000, maxBackoffMs: 1000 });
    const send = publisher(base);
    const INTERVAL_MS = 100;
    const started = Date.now();
    let count = 0;
    while (Date.now() - started < RUN_MS) {
      await send(numbered(count));
      count++;
      const due = started + count * INTERVAL_MS;
      if (Date.now() < due) await sleep(due - Date.now());
    }
    await page.waitForFunction((c) => window.log.messages.length >= c, count, { timeout: 20000 }).catch(async () => {
      assert.fail(`only ${await received()} of ${count} messages arrived`);
    });
    await sleep(1000); // a duplicate would arrive by now
    const log = await page.evaluate(() => window.log);
    assertWhole(log.messages, count);
    assert.equal(log.gaps, 0);
    // The server ended the sockets at their lifetime (about every TTL_SECS + a backoff), not
    // sooner for idleness: the keep-alive kept them alive.
    const opens = log.states.filter((s) => s === "open").length;
    const most = Math.ceil(RUN_MS / 1000 / TTL_SECS) + 2;
    assert.ok(opens >= RUN_MS / 1000 / (TTL_SECS + 1) - 1, `sockets were ended and replaced: ${opens} opens`);
    assert.ok(opens <= most, `${opens} opens in ${RUN_MS / 1000} s: no socket ended for idleness (at most ${most})`);
    t.diagnostic(`${count} messages over ${opens} sockets`);
    await checkOrder(t, log.messages);
    await page.evaluate(() => window.client.close());
    assert.deepEqual(errors, []);
  } finally {
    await chromium.close();
    child.kill("SIGTERM");
  }
});
