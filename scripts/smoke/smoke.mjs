// Smoke test of a real Switchboard deployment: the AWS stack or `switchboard serve`, unchanged
// (run through scripts/smoke-aws.sh, which documents the arguments and variables). Each check
// is one row of the table; a check that could not be made says "skip", never "pass".
//
// Checks, in order:
//  1. connect + whoami, token in `?token=`; and with `Sec-WebSocket-Protocol: bearer, <jwt>`.
//  2. $disconnect: the second socket is in the user's presence, is closed, and leaves the
//     roster (GET /v1/tenants/{t}/users/{u}/presence polled until it is gone; 10 s).
//  3. A small message to the user: the frame's shape (does it carry a `cursor`, how long) is
//     what the size checks below pad against.
//  4. Frame sizes. A delivered frame is exactly `{"id":…,"cursor":…,"data":…}` (cursor only
//     when history recorded it; model/src/envelope.rs `frame_with_cursor`), and the limit is
//     128 KiB = 131,072 bytes (`MAX_FRAME_BYTES`, `within_frame_limit`: a frame of exactly
//     131,072 bytes is within it; API Gateway's message payload quota is 128 KB:
//     https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html).
//     `data` is a string padded so that the *received* frame has exactly the target length.
//     - 128,000 bytes: pass = published (202) and received once, exactly 128,000 bytes,
//       data intact.
//     - 131,072 bytes (the limit): the publish API may count the longest cursor a message
//       could get rather than the one it gets, and so refuse a body whose real frame would
//       just fit. Pass = either delivered intact at exactly 131,072 bytes, or refused with
//       413 at publish time and never enqueued (no receipt for its id). Fail = anything
//       else, above all accepted (202) and then not delivered.
//  5. Fan-out: N sockets (SMOKE_FANOUT_CONNECTIONS, default 40) of a tenant of their own, one
//     tenant message; every socket gets it exactly once, and its receipt ends `delivered` with
//     matched = delivered = N. With a shard size of 1 (serve: FANOUT_SHARD_SIZE=1; AWS:
//     -c fanoutShardSize=1) that is N pages, a chain longer than Lambda's 16 hops.
//  6. Resume: the first socket is closed, a message is sent to its user, the user reconnects
//     and sends {"action":"resume","since":<last cursor it saw>}: the missed frame exactly
//     once (plus, possibly, frames it had already received: a resume re-reads a few seconds
//     before `since` and clients dedupe by id), then {"type":"resumed","complete":true}.
//  7. $disconnect errors: with SMOKE_DISCONNECT_FUNCTION and the aws CLI, the `Errors` metric
//     of that Lambda function (AWS/Lambda namespace) over this run must be 0, once CloudWatch
//     shows the run's invocations; otherwise "skip" (against serve: n/a).

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { Api, Checks, Socket, endpoints, sleep, tokenMinter } from "./lib.mjs";

const env = process.env;
const { wsUrl, api } = endpoints(process.argv.slice(2));
const bin = env.SWITCHBOARD_BIN || "switchboard";
const mint = tokenMinter(bin, env.SMOKE_KEY || undefined);
const run = randomBytes(4).toString("hex");
const tenant = env.SMOKE_TENANT || `smoke-${run}`;
const fanoutTenant = `${tenant}-fanout`;
const fanoutCount = Number(env.SMOKE_FANOUT_CONNECTIONS || 40);
const FRAME_LIMIT = 128 * 1024;
const DELIVERY_MS = 15_000;
const startedAt = new Date();

const publisher = new Api(api, mint(tenant, "smoke-publisher", ["publisher"]));
const fanoutPublisher = new Api(api, mint(fanoutTenant, "smoke-publisher", ["publisher"]));
const checks = new Checks();
const users = (list) => ({ type: "users", tenant, users: list });
let alice;
let probe;

await checks.run("connect + whoami (?token=)", async () => {
  alice = await Socket.open(wsUrl, mint(tenant, "alice"), "query");
  const me = await alice.whoami();
  if (me.tenant !== tenant || me.user !== "alice" || !me.connectionId) {
    throw new Error(`whoami answered ${JSON.stringify(me)}`);
  }
  return { detail: `connectionId ${me.connectionId}` };
});

let bob;
await checks.run("connect + whoami (bearer subprotocol)", async () => {
  bob = await Socket.open(wsUrl, mint(tenant, "bob"), "bearer");
  const me = await bob.whoami();
  if (me.user !== "bob") throw new Error(`whoami answered ${JSON.stringify(me)}`);
  return { detail: `connectionId ${me.connectionId}` };
});

await checks.run("$disconnect removes the roster entry", async () => {
  if (!bob) throw new Error("no socket (connect failed)");
  const listed = (answer) => answer.body?.connections?.some((c) => c.connectionId === bob.connectionId);
  const before = await publisher.userPresence(tenant, "bob");
  if (before.status !== 200 || !listed(before)) {
    throw new Error(`presence before close: HTTP ${before.status} ${JSON.stringify(before.body)}`);
  }
  await bob.close();
  const closedAt = performance.now();
  while (performance.now() - closedAt < 10_000) {
    const after = await publisher.userPresence(tenant, "bob");
    if (after.status === 200 && !listed(after)) {
      return { detail: `gone from presence ${Math.round(performance.now() - closedAt)} ms after close` };
    }
    await sleep(100);
  }
  throw new Error("still in presence 10 s after close");
});

await checks.run("publish → deliver (small frame)", async () => {
  if (!alice) throw new Error("no socket (connect failed)");
  const id = `smoke-probe-${run}`;
  const answer = await publisher.publish({ id, target: users(["alice"]), data: "probe" });
  if (answer.status !== 202) throw new Error(`publish answered ${answer.status} ${JSON.stringify(answer.body)}`);
  const frame = await alice.next((f) => f.json?.id === id, DELIVERY_MS, `frame ${id}`);
  probe = { cursorLength: typeof frame.json.cursor === "string" ? frame.json.cursor.length : null };
  return {
    detail: probe.cursorLength === null ? "delivered, no cursor (history off)" : `delivered with a ${probe.cursorLength}-character cursor`,
  };
});

/** An envelope to alice whose delivered frame is exactly `bytes` long (given the probe's cursor). */
function sized(id, bytes) {
  const skeleton = probe.cursorLength === null ? { id, data: "" } : { id, cursor: "0".repeat(probe.cursorLength), data: "" };
  const pad = bytes - Buffer.byteLength(JSON.stringify(skeleton));
  return { id, target: users(["alice"]), data: "x".repeat(pad), pad };
}

async function deliveredExactly(id, bytes) {
  const { pad, ...envelope } = sized(id, bytes);
  const answer = await publisher.publish(envelope);
  return { answer, pad };
}

async function receivedIntact(id, bytes, pad) {
  const frame = await alice.next((f) => f.json?.id === id, DELIVERY_MS, `frame ${id}`);
  if (frame.bytes !== bytes || frame.json.data.length !== pad || /[^x]/.test(frame.json.data)) {
    throw new Error(`frame ${id} arrived with ${frame.bytes} bytes (expected ${bytes}) or altered data`);
  }
  await sleep(300);
  const again = alice.take(id);
  if (again.length) throw new Error(`frame ${id} arrived ${again.length + 1} times`);
}

await checks.run("frame of 128,000 bytes", async () => {
  if (!probe) throw new Error("needs the small-frame check");
  const id = `smoke-128000-${run}`;
  const { answer, pad } = await deliveredExactly(id, 128_000);
  if (answer.status !== 202) throw new Error(`publish answered ${answer.status} ${JSON.stringify(answer.body)}`);
  await receivedIntact(id, 128_000, pad);
  return { detail: "202, received once, exactly 128,000 bytes" };
});

await checks.run(`frame of ${FRAME_LIMIT.toLocaleString("en")} bytes (the limit)`, async () => {
  if (!probe) throw new Error("needs the small-frame check");
  const id = `smoke-131072-${run}`;
  const { answer, pad } = await deliveredExactly(id, FRAME_LIMIT);
  if (answer.status === 413) {
    const receipt = await publisher.receipt(tenant, id);
    if (receipt.status !== 404) {
      throw new Error(`413 but a receipt exists (HTTP ${receipt.status} ${JSON.stringify(receipt.body)})`);
    }
    await sleep(1000);
    if (alice.take(id).length) throw new Error("413 yet the frame was delivered");
    return { detail: `refused with 413 before enqueueing (${answer.body?.message ?? ""}); no receipt` };
  }
  if (answer.status !== 202) throw new Error(`publish answered ${answer.status} ${JSON.stringify(answer.body)}`);
  try {
    await receivedIntact(id, FRAME_LIMIT, pad);
  } catch (error) {
    const receipt = await publisher.receipt(tenant, id);
    throw new Error(`accepted (202) but ${error.message}; receipt: ${JSON.stringify(receipt.body)}`);
  }
  return { detail: "202, received once, exactly 131,072 bytes" };
});

await checks.run(`fan-out: ${fanoutCount} sockets, one tenant message`, async () => {
  const sockets = [];
  try {
    const tokens = Array.from({ length: fanoutCount }, (_, i) => mint(fanoutTenant, `fan-${i}`));
    for (let i = 0; i < tokens.length; i += 10) {
      const batch = await Promise.all(tokens.slice(i, i + 10).map((t) => Socket.open(wsUrl, t)));
      sockets.push(...batch);
    }
    await Promise.all(sockets.map((s) => s.whoami()));
    const id = `smoke-fanout-${run}`;
    const sentAt = performance.now();
    const answer = await fanoutPublisher.publish({ id, target: { type: "tenant", tenant: fanoutTenant }, data: { fanout: run } });
    if (answer.status !== 202) throw new Error(`publish answered ${answer.status} ${JSON.stringify(answer.body)}`);
    const waits = await Promise.allSettled(sockets.map((s) => s.next((f) => f.json?.id === id, 30_000, `frame ${id}`)));
    const missing = waits.filter((w) => w.status === "rejected").length;
    const allIn = Math.round(performance.now() - sentAt);
    await sleep(1000);
    const duplicated = sockets.filter((s) => s.take(id).length > 0).length;
    if (missing || duplicated) {
      throw new Error(`${fanoutCount - missing}/${fanoutCount} received; ${missing} missing, ${duplicated} twice or more`);
    }
    const receipt = await fanoutPublisher.receiptUntil(
      fanoutTenant,
      id,
      (r) => r.status !== "queued" && r.status !== "delivering" && r.matched >= fanoutCount,
      30_000,
    );
    const r = receipt.body ?? {};
    const counts = `receipt ${r.status}: matched ${r.matched}, delivered ${r.delivered}, gone ${r.gone}, failed ${r.failed}`;
    if (receipt.status !== 200) throw new Error(`all received once, but receipt HTTP ${receipt.status} ${JSON.stringify(receipt.body)}`);
    if (r.status !== "delivered" || r.matched !== fanoutCount || r.delivered !== fanoutCount) {
      throw new Error(`all received once, but ${counts}`);
    }
    return { detail: `${fanoutCount}/${fanoutCount} once each, all within ${allIn} ms; ${counts}` };
  } finally {
    await Promise.all(sockets.map((s) => s.close()));
  }
});

await checks.run("resume after a reconnect", async () => {
  if (!alice) throw new Error("no socket (connect failed)");
  const since = alice.lastCursor;
  if (!since) return { status: "skip", detail: "no cursor seen: history is off, nothing to resume" };
  const seen = alice.seenIds;
  await alice.close();
  const id = `smoke-resume-${run}`;
  const answer = await publisher.publish({ id, target: users(["alice"]), data: { missed: true } });
  if (answer.status !== 202) throw new Error(`publish answered ${answer.status} ${JSON.stringify(answer.body)}`);
  // Let the publisher handle it (no live socket), so it can only come back by resume.
  const handled = await publisher.receiptUntil(tenant, id, (r) => r.status !== "queued" && r.status !== "delivering", 10_000);
  if (handled.status !== 200) await sleep(2000);
  alice = await Socket.open(wsUrl, mint(tenant, "alice"));
  alice.send({ action: "resume", since });
  const resumed = await alice.next((f) => f.json?.type === "resumed", DELIVERY_MS, "resumed answer");
  // A resume re-reads a few seconds before `since` (services/core/src/history/resume.rs:
  // RESUME_OVERLAP; clients dedupe by id): frames already seen may come again, the missed
  // one must come exactly once and nothing else may.
  const before = alice.frames.filter((f) => f.at <= resumed.at && f.json?.id).map((f) => f.json);
  const missed = before.filter((f) => f.id === id);
  const unexpected = before.filter((f) => f.id !== id && !seen.has(f.id)).map((f) => f.id);
  if (missed.length !== 1 || unexpected.length) {
    throw new Error(`before resumed: [${before.map((f) => f.id).join(", ")}], expected ${id} once plus ids seen before`);
  }
  if (resumed.json.complete !== true || resumed.json.count !== before.length) throw new Error(`resumed answered ${resumed.text}`);
  if (!(missed[0].cursor > since)) throw new Error(`missed frame's cursor ${missed[0].cursor} not after ${since}`);
  return { detail: `missed frame once (+${before.length - 1} already-seen from the overlap), then ${resumed.text}` };
});
await alice?.close();

await checks.run("$disconnect function errors", async () => {
  const fn = env.SMOKE_DISCONNECT_FUNCTION;
  if (!fn) return { status: "skip", detail: "n/a: SMOKE_DISCONNECT_FUNCTION not set (serve has no Lambda)" };
  const aws = promisify(execFile);
  try {
    await aws("aws", ["--version"]);
  } catch {
    return { status: "skip", detail: "the aws CLI is not installed" };
  }
  // CloudWatch publishes Lambda metrics with a delay: wait until the run's invocations show.
  const waitMs = Number(env.SMOKE_METRICS_WAIT_SECS || 300) * 1000;
  const deadline = performance.now() + waitMs;
  const start = new Date(startedAt.getTime() - 60_000).toISOString();
  const sum = async (metric) => {
    const end = new Date(Date.now() + 60_000).toISOString();
    const { stdout } = await aws("aws", [
      "cloudwatch", "get-metric-statistics", "--namespace", "AWS/Lambda", "--metric-name", metric,
      "--dimensions", `Name=FunctionName,Value=${fn}`, "--start-time", start, "--end-time", end,
      "--period", "60", "--statistics", "Sum", "--output", "json",
    ]);
    const points = JSON.parse(stdout).Datapoints ?? [];
    return points.length ? points.reduce((total, p) => total + p.Sum, 0) : null;
  };
  for (;;) {
    const invocations = await sum("Invocations");
    if (invocations) {
      const errors = (await sum("Errors")) ?? 0;
      if (errors !== 0) throw new Error(`${errors} errors in ${invocations} invocations of ${fn}`);
      return { detail: `0 errors in ${invocations} invocations of ${fn}` };
    }
    if (performance.now() > deadline) {
      return { status: "skip", detail: `no Invocations datapoints for ${fn} after ${waitMs / 1000} s` };
    }
    await sleep(15_000);
  }
});

checks.print(`Switchboard smoke test: ${wsUrl} + ${api} (tenant ${tenant}, ${new Date().toISOString()})`);
process.exit(checks.failed() ? 1 : 0);
