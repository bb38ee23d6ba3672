// The client against a fake WebSocket with fake time: handshake, state events, backoff,
// keep-alive, dedupe, resume and gaps, token refresh, planned reconnects, close().
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { createClient, BASE_BACKOFF_MS, MAX_URL_CHARS, OVERLAP_MS, STABLE_MS } from "../dist/index.js";
import { advance, fakeSockets, jwt, settle, START, useFakeTime } from "./fake.mjs";

const HOUR_S = 3600;
const startS = START / 1000;

/** A client on fake sockets; `tokens` counts token() calls and each token is distinct. */
function setup(t, options = {}) {
  useFakeTime(t);
  const { WebSocket, sockets } = fakeSockets();
  const record = { tokens: 0, states: [], messages: [], gaps: 0 };
  const client = createClient({
    url: "ws://127.0.0.1:8080/main",
    token: async () => jwt(Math.floor(Date.now() / 1000) + HOUR_S, `alice-${++record.tokens}`),
    WebSocket,
    ...options,
  });
  client.on("state", (s) => record.states.push(s));
  client.on("message", (m) => record.messages.push(m));
  client.on("gap", () => record.gaps++);
  t.after(() => client.close());
  return { client, sockets, record };
}

/** Makes Math.random return `value` for the rest of the test. */
function fixRandom(t, value) {
  const real = Math.random;
  Math.random = () => value;
  t.after(() => {
    Math.random = real;
  });
}

test("connects with the token in the bearer subprotocol and reports open", async (t) => {
  const { client, sockets, record } = setup(t);
  assert.equal(client.state, "connecting");
  await settle();
  assert.equal(sockets.length, 1);
  assert.equal(sockets[0].url, "ws://127.0.0.1:8080/main");
  assert.equal(sockets[0].protocols[0], "bearer");
  assert.match(sockets[0].protocols[1], /^[\w-]+\.[\w-]+\.[\w-]+$/);
  sockets[0].open();
  assert.deepEqual(record.states, ["connecting", "open"]);
  assert.equal(client.state, "open");
});

test("the query transport puts the token in ?token= and keeps other parameters", async (t) => {
  const { sockets } = setup(t, { transport: "query", url: "ws://h/main?x=1" });
  await settle();
  const url = new URL(sockets[0].url);
  assert.equal(url.searchParams.get("x"), "1");
  assert.equal(url.searchParams.get("token").split(".").length, 3);
  assert.equal(sockets[0].protocols, undefined);
});

/** A JWT-shaped token of exactly `length` characters (its signature padded). */
function tokenOfLength(length) {
  const base = jwt(startS + HOUR_S);
  assert.ok(length >= base.length);
  return base + "c".repeat(length - base.length);
}

/** The query transport with a token of `length` characters: the socket and debug messages. */
async function queryConnect(t, length) {
  const debug = [];
  const token = tokenOfLength(length);
  const { sockets } = setup(t, {
    transport: "query",
    url: "ws://h/main?x=1",
    token: () => token,
    debug: (m) => debug.push(m),
  });
  await settle();
  assert.equal(sockets.length, 1);
  return { socket: sockets[0], token, debug };
}

test("the query transport keeps a short token in the URL", async (t) => {
  const { socket, token, debug } = await queryConnect(t, 200);
  assert.equal(socket.url, `ws://h/main?x=1&token=${token}`);
  assert.equal(socket.protocols, undefined);
  assert.deepEqual(debug, []);
});

test("a token too long for API Gateway's URL limit goes in the bearer subprotocol", async (t) => {
  const { socket, token, debug } = await queryConnect(t, 5000);
  assert.equal(socket.url, "ws://h/main?x=1", "the URL is left without the token");
  assert.deepEqual(socket.protocols, ["bearer", token]);
  assert.equal(debug.length, 1);
  assert.match(debug[0], /5022 > 4096 characters: using the bearer subprotocol/);
});

test("a URL of exactly MAX_URL_CHARS keeps the token; one character more switches", async (t) => {
  assert.equal(MAX_URL_CHARS, 4096);
  const prefix = "ws://h/main?x=1&token=".length;
  await t.test("at the limit", async (t) => {
    const { socket, debug } = await queryConnect(t, MAX_URL_CHARS - prefix);
    assert.equal(socket.url.length, MAX_URL_CHARS);
    assert.equal(socket.protocols, undefined);
    assert.deepEqual(debug, []);
  });
  await t.test("one over", async (t) => {
    const { socket, token, debug } = await queryConnect(t, MAX_URL_CHARS - prefix + 1);
    assert.equal(socket.url, "ws://h/main?x=1");
    assert.deepEqual(socket.protocols, ["bearer", token]);
    assert.equal(debug.length, 1);
  });
});

test("the URL length counts the token percent-encoded", async (t) => {
  // 2,000 characters that each take three in the URL ("%2C"): 6,000 characters, too long.
  const token = `${jwt(startS + HOUR_S)}${",".repeat(2000)}`;
  const { sockets } = setup(t, { transport: "query", token: () => token });
  await settle();
  assert.equal(sockets[0].url, "ws://127.0.0.1:8080/main");
  assert.deepEqual(sockets[0].protocols, ["bearer", token]);
});

test("a lost socket is replaced after a full-jitter backoff that doubles up to the cap", async (t) => {
  fixRandom(t, 0.999);
  const { sockets, record } = setup(t, { maxBackoffMs: 3000 });
  await settle();
  sockets[0].open();
  sockets[0].serverClose(1001);
  assert.deepEqual(record.states, ["connecting", "open", "reconnecting"]);
  // Windows 500, 1000, 2000, then the 3000 cap; random 0.999 waits almost the whole window.
  for (const window of [BASE_BACKOFF_MS, 1000, 2000, 3000, 3000]) {
    const before = sockets.length;
    const wait = Math.floor(0.999 * window);
    await advance(wait - 1, 1);
    assert.equal(sockets.length, before, `no new socket before ${wait} ms`);
    await advance(1, 1);
    assert.equal(sockets.length, before + 1, `a new socket at ${wait} ms`);
    sockets.at(-1).serverClose(1006); // fails again without opening
  }
  assert.equal(record.tokens, 6, "a fresh token for every attempt");
});

test("the backoff resets after a stable connection", async (t) => {
  const { sockets } = setup(t);
  await settle();
  fixRandom(t, 0.999);
  for (let i = 0; i < 4; i++) {
    const before = sockets.length;
    sockets.at(-1).serverClose(1006);
    while (sockets.length === before) await advance(100, 100);
  }
  assert.equal(sockets.length, 5);
  sockets.at(-1).open();
  await advance(STABLE_MS, 1000);
  sockets.at(-1).serverClose(1001);
  // Attempt 0 again: within the first window (500 ms), not the 8 s the count had reached.
  await advance(BASE_BACKOFF_MS, 1);
  assert.equal(sockets.length, 6);
});

test("a socket closed before it was stable keeps the backoff growing", async (t) => {
  fixRandom(t, 0.999);
  const { sockets } = setup(t);
  await settle();
  sockets[0].open();
  sockets[0].serverClose(1008);
  await advance(BASE_BACKOFF_MS, 1);
  assert.equal(sockets.length, 2);
  sockets[1].open();
  await advance(STABLE_MS - 1000, 1000);
  sockets[1].serverClose(1008);
  await advance(998, 1);
  assert.equal(sockets.length, 2, "second window (1000 ms), not reset");
  await advance(1, 1);
  assert.equal(sockets.length, 3);
});

test("4001 (token expired): a new token is fetched and used for the next socket", async (t) => {
  fixRandom(t, 0);
  const { sockets, record } = setup(t);
  await settle();
  sockets[0].open();
  const first = sockets[0].protocols[1];
  sockets[0].serverClose(4001);
  await advance(10, 1);
  assert.equal(sockets.length, 2);
  assert.equal(record.tokens, 2);
  assert.notEqual(sockets[1].protocols[1], first);
});

test("a failing token() is retried with backoff, never a socket without a token", async (t) => {
  fixRandom(t, 0);
  useFakeTime(t);
  const { WebSocket, sockets } = fakeSockets();
  let calls = 0;
  const client = createClient({
    url: "ws://h/main",
    WebSocket,
    token: async () => {
      calls++;
      if (calls < 3) throw new Error("auth server down");
      return jwt(startS + HOUR_S);
    },
  });
  t.after(() => client.close());
  await advance(100, 1);
  assert.equal(calls, 3);
  assert.equal(sockets.length, 1);
  assert.equal(client.state, "reconnecting");
  sockets[0].open();
  assert.equal(client.state, "open");
});

test("a token() that never answers times out and is asked again", async (t) => {
  fixRandom(t, 0);
  useFakeTime(t);
  const { WebSocket, sockets } = fakeSockets();
  let calls = 0;
  const client = createClient({
    url: "ws://h/main",
    WebSocket,
    timeoutMs: 1000,
    token: () => (++calls === 1 ? new Promise(() => {}) : jwt(startS + HOUR_S)),
  });
  t.after(() => client.close());
  await advance(999, 1);
  assert.equal(sockets.length, 0);
  await advance(10, 1);
  assert.equal(calls, 2);
  assert.equal(sockets.length, 1);
});

test("a handshake that never completes is abandoned after timeoutMs", async (t) => {
  fixRandom(t, 0);
  const { sockets } = setup(t, { timeoutMs: 2000 });
  await settle();
  await advance(1999, 1);
  assert.equal(sockets[0].closedWith, undefined);
  await advance(1, 1);
  assert.ok(sockets[0].closedWith, "abandoned");
  await advance(1, 1);
  assert.equal(sockets.length, 2);
});

test("keep-alive: a ping every keepAliveMs; no answer within timeoutMs means lost", async (t) => {
  fixRandom(t, 0);
  const { sockets, record } = setup(t, { keepAliveMs: 60_000, timeoutMs: 5000 });
  await settle();
  sockets[0].open();
  await advance(59_999, 1000);
  assert.equal(sockets[0].actions("ping").length, 0);
  await advance(1, 1);
  assert.equal(sockets[0].actions("ping").length, 1);
  sockets[0].receive({ type: "pong" });
  await advance(60_000, 1000);
  assert.equal(sockets[0].actions("ping").length, 2);
  assert.equal(sockets.length, 1, "answered pings keep the socket");
  await advance(5000, 100); // no pong this time
  assert.ok(sockets[0].closedWith, "silent socket closed");
  assert.deepEqual(record.states, ["connecting", "open", "reconnecting"]);
  await advance(10, 1);
  assert.equal(sockets.length, 2);
});

// The keep-alive rule (README: Keep-alive): API Gateway closes a socket after 10 idle minutes;
// the client pings every 9 minutes by default and a ping unanswered for `timeoutMs` (10 s by
// default) ends the socket. Tokens here outlive the hour, so no refresh adds traffic.
const MINUTE = 60_000;
const KEEP_ALIVE = 9 * MINUTE;
const TIMEOUT = 10_000;

test("the default keep-alive: one ping every 9 minutes over an hour of answered pings, none early", async (t) => {
  const { sockets } = setup(t, { token: async () => jwt(startS + 3 * HOUR_S) });
  await settle();
  sockets[0].open();
  let answered = 0;
  for (let s = 0; s < HOUR_S; s++) {
    await advance(1000, 1000);
    // The server answers each ping at once, as the MOCK route and serve do.
    for (; answered < sockets[0].actions("ping").length; answered++) sockets[0].receive({ type: "pong" });
  }
  const expected = [1, 2, 3, 4, 5, 6].map((n) => n * KEEP_ALIVE);
  assert.deepEqual(sockets[0].sentTimes("ping"), expected, "a ping at 9, 18, … 54 minutes, no other");
  assert.ok(KEEP_ALIVE < 10 * MINUTE, "inside API Gateway's idle limit");
  assert.equal(sockets.length, 1, "answered pings keep the one socket");
  assert.equal(sockets[0].closedWith, undefined);
});

test("the default keep-alive: a ping unanswered for timeoutMs closes the socket; the next opens within the first backoff window", async (t) => {
  fixRandom(t, 0.999); // the longest wait of the backoff's first window: 499 ms
  const { sockets, record } = setup(t, { token: async () => jwt(startS + 3 * HOUR_S) });
  await settle();
  sockets[0].open();
  await advance(KEEP_ALIVE, 1000);
  assert.deepEqual(sockets[0].sentTimes("ping"), [KEEP_ALIVE]);
  await advance(TIMEOUT - 1, 1);
  assert.equal(sockets[0].closedWith, undefined, "open until timeoutMs after the ping");
  await advance(1, 1);
  assert.ok(sockets[0].closedWith, "closed at ping + timeoutMs");
  assert.deepEqual(record.states, ["connecting", "open", "reconnecting"]);
  // The socket had been stable, so the backoff starts over: a wait in [0, BASE_BACKOFF_MS).
  const wait = Math.floor(0.999 * BASE_BACKOFF_MS);
  await advance(wait - 1, 1);
  assert.equal(sockets.length, 1, `no new socket before ping + timeoutMs + ${wait} ms`);
  await advance(1, 1);
  assert.equal(sockets.length, 2, `a new socket at ping + timeoutMs + ${wait} ms`);
  assert.equal(Date.now() - START, KEEP_ALIVE + TIMEOUT + BASE_BACKOFF_MS - 1);
  sockets[1].open();
  assert.equal(record.states.at(-1), "open");
});

test("messages are delivered with id, data and cursor; each id once", async (t) => {
  fixRandom(t, 0);
  const { sockets, record } = setup(t);
  await settle();
  sockets[0].open();
  sockets[0].receive({ id: "a", data: { n: 1 } });
  sockets[0].receive({ id: "b", cursor: "0001700000000001-x", data: [2] });
  sockets[0].receive({ id: "a", data: { n: 1 } });
  sockets[0].receive("not json");
  sockets[0].receive({ type: "whoami", connectionId: "c" });
  sockets[0].receive({ id: 7, data: 1 }); // not a message: id is not a string
  assert.deepEqual(record.messages, [
    { id: "a", data: { n: 1 } },
    { id: "b", cursor: "0001700000000001-x", data: [2] },
  ]);
  // Across a reconnect too.
  sockets[0].serverClose(1001);
  await advance(10, 1);
  sockets[1].open();
  sockets[1].receive({ type: "resumed", count: 0, complete: true });
  sockets[1].receive({ id: "a", data: { n: 1 } });
  sockets[1].receive({ id: "c", data: null });
  assert.deepEqual(record.messages.map((m) => m.id), ["a", "b", "c"]);
});

test("the dedupe window is bounded: an id older than the window is delivered again", async (t) => {
  const { sockets, record } = setup(t, { dedupeWindow: 2 });
  await settle();
  sockets[0].open();
  for (const id of ["a", "b", "c", "a", "c"]) sockets[0].receive({ id, data: 0 });
  assert.deepEqual(record.messages.map((m) => m.id), ["a", "b", "c", "a"]);
});

test("resume from the newest cursor after a reconnect; held frames come out in cursor order", async (t) => {
  fixRandom(t, 0);
  const { client, sockets, record } = setup(t);
  await settle();
  sockets[0].open();
  assert.equal(sockets[0].actions("resume").length, 0, "nothing to resume on a first connection");
  sockets[0].receive({ id: "m1", cursor: "0001700000000001-a", data: 1 });
  sockets[0].receive({ id: "m3", cursor: "0001700000000003-a", data: 3 });
  sockets[0].receive({ id: "m2", cursor: "0001700000000002-a", data: 2 });
  assert.equal(client.cursor, "0001700000000003-a");
  sockets[0].serverClose(1001);
  await advance(10, 1);
  sockets[1].open();
  assert.deepEqual(sockets[1].actions("resume"), [{ action: "resume", since: "0001700000000003-a" }]);
  // A live message overtakes the replay; both are held until `resumed`.
  sockets[1].receive({ id: "m6", cursor: "0001700000000006-a", data: 6 });
  sockets[1].receive({ id: "x", data: "no cursor" });
  sockets[1].receive({ id: "m3", cursor: "0001700000000003-a", data: 3 });
  sockets[1].receive({ id: "m4", cursor: "0001700000000004-a", data: 4 });
  sockets[1].receive({ id: "m5", cursor: "0001700000000005-a", data: 5 });
  assert.equal(record.messages.length, 3, "held while resuming");
  sockets[1].receive({ type: "resumed", count: 3, complete: true });
  // Cursor-bearing frames fill their own slots in cursor order (m3 is a duplicate).
  assert.deepEqual(record.messages.map((m) => m.id), ["m1", "m3", "m2", "x", "m4", "m5", "m6"]);
  assert.equal(record.gaps, 0);
  assert.equal(client.cursor, "0001700000000006-a");
  sockets[1].receive({ id: "m7", cursor: "0001700000000007-a", data: 7 });
  assert.equal(record.messages.at(-1).id, "m7", "not held after the resume");
});

test("resumed with complete: false emits gap", async (t) => {
  fixRandom(t, 0);
  const { sockets, record } = setup(t, { since: "0001700000000001-a" });
  await settle();
  sockets[0].open();
  assert.deepEqual(sockets[0].actions("resume"), [{ action: "resume", since: "0001700000000001-a" }]);
  sockets[0].receive({ id: "m9", cursor: "0001700000000009-a", data: 9 });
  sockets[0].receive({ type: "resumed", count: 500, complete: false });
  assert.equal(record.gaps, 1);
  assert.deepEqual(record.messages.map((m) => m.id), ["m9"]);
});

test("a server without history (unknown_action): messages flow, no gap, no second resume", async (t) => {
  fixRandom(t, 0);
  const { sockets, record } = setup(t, { since: "0001700000000001-a", keepAliveMs: 1000 });
  await settle();
  sockets[0].open();
  sockets[0].receive({ id: "live", data: 1 });
  sockets[0].receive({ type: "error", error: "unknown_action" });
  assert.deepEqual(record.messages.map((m) => m.id), ["live"]);
  assert.equal(record.gaps, 0);
  await advance(5000, 100);
  assert.equal(sockets[0].actions("resume").length, 1);
  assert.equal(sockets.length, 1);
});

test("invalid_cursor: gap, and the cursor is dropped so it is not sent again", async (t) => {
  fixRandom(t, 0);
  const { client, sockets, record } = setup(t, { since: "garbage" });
  await settle();
  sockets[0].open();
  sockets[0].receive({ type: "error", error: "invalid_cursor" });
  assert.equal(record.gaps, 1);
  assert.equal(client.cursor, undefined);
  sockets[0].serverClose(1001);
  await advance(10, 1);
  sockets[1].open();
  assert.equal(sockets[1].actions("resume").length, 0);
});

test("an unanswered resume stops holding messages after timeoutMs", async (t) => {
  const { sockets, record } = setup(t, { since: "0001700000000001-a", timeoutMs: 3000 });
  await settle();
  sockets[0].open();
  sockets[0].receive({ id: "a", data: 1 });
  await advance(2999, 100);
  assert.equal(record.messages.length, 0);
  await advance(1, 1);
  assert.deepEqual(record.messages.map((m) => m.id), ["a"]);
  assert.equal(record.gaps, 0);
});

test("refresh: a new token is sent before exp, and again before the new exp", async (t) => {
  useFakeTime(t);
  const { WebSocket, sockets } = fakeSockets();
  const issued = [];
  const client = createClient({
    url: "ws://h/main",
    WebSocket,
    keepAliveMs: 3_600_000,
    token: async () => {
      const token = jwt(Math.floor(Date.now() / 1000) + 600);
      issued.push(token);
      return token;
    },
  });
  t.after(() => client.close());
  await settle();
  sockets[0].open();
  // 600 s token: renewed 60 s before exp.
  await advance(539_000, 1000);
  assert.equal(sockets[0].actions("refresh").length, 0);
  await advance(1000, 100);
  assert.deepEqual(sockets[0].actions("refresh"), [{ action: "refresh", token: issued[1] }]);
  const exp = startS + 540 + 600;
  sockets[0].receive({ type: "refreshed", exp });
  await advance(539_000, 1000);
  assert.equal(sockets[0].actions("refresh").length, 1);
  await advance(1000, 100);
  assert.equal(sockets[0].actions("refresh").length, 2);
  assert.equal(sockets.length, 1, "no reconnect while the server refreshes in-band");
});

test("refresh unsupported (unknown_action): planned reconnect with the new token, old socket closed after", async (t) => {
  useFakeTime(t);
  const { WebSocket, sockets } = fakeSockets();
  const issued = [];
  const states = [];
  const client = createClient({
    url: "ws://h/main",
    WebSocket,
    token: async () => {
      const token = jwt(Math.floor(Date.now() / 1000) + 120);
      issued.push(token);
      return token;
    },
  });
  client.on("state", (s) => states.push(s));
  t.after(() => client.close());
  await settle();
  sockets[0].open();
  await advance(60_000, 500);
  assert.equal(sockets[0].actions("refresh").length, 1);
  sockets[0].receive({ type: "error", error: "unknown_action" });
  await settle();
  assert.equal(sockets.length, 2, "new socket opened");
  assert.equal(sockets[1].protocols[1], issued[1], "with the token from the refresh");
  assert.equal(sockets[0].closedWith, undefined, "old socket still open");
  sockets[1].open();
  await advance(OVERLAP_MS - 1, 1);
  assert.equal(sockets[0].closedWith, undefined);
  await advance(1, 1);
  assert.deepEqual(sockets[0].closedWith, { code: 1000, reason: "replaced" });
  assert.deepEqual(states, ["connecting", "open"], "a planned reconnect is invisible");
  // Next time, no refresh is tried: straight to a planned reconnect.
  await advance(60_000, 500);
  assert.equal(sockets[1].actions("refresh").length, 0);
  assert.equal(sockets.length, 3);
});

test("a refused refresh (invalid_token) falls back to a planned reconnect, and refresh is tried again later", async (t) => {
  useFakeTime(t);
  const { WebSocket, sockets } = fakeSockets();
  const client = createClient({
    url: "ws://h/main",
    WebSocket,
    keepAliveMs: 3_600_000,
    token: async () => jwt(Math.floor(Date.now() / 1000) + 120),
  });
  t.after(() => client.close());
  await settle();
  sockets[0].open();
  await advance(60_000, 500);
  sockets[0].receive({ type: "error", error: "invalid_token" });
  await settle();
  assert.equal(sockets.length, 2);
  sockets[1].open();
  await advance(60_000, 500);
  assert.equal(sockets[1].actions("refresh").length, 1, "in-band refresh is still used");
});

test("refresh_unavailable: no more in-band refreshes, planned reconnects instead", async (t) => {
  useFakeTime(t);
  const { WebSocket, sockets } = fakeSockets();
  const client = createClient({
    url: "ws://h/main",
    WebSocket,
    keepAliveMs: 3_600_000,
    token: async () => jwt(Math.floor(Date.now() / 1000) + 120),
  });
  t.after(() => client.close());
  await settle();
  sockets[0].open();
  await advance(60_000, 500);
  sockets[0].receive({ type: "error", error: "refresh_unavailable" });
  await settle();
  sockets[1].open();
  await advance(60_000, 500);
  assert.equal(sockets[1].actions("refresh").length, 0);
  assert.equal(sockets.length, 3);
});

test("a refresh that goes unanswered falls back to a planned reconnect", async (t) => {
  useFakeTime(t);
  const { WebSocket, sockets } = fakeSockets();
  const client = createClient({
    url: "ws://h/main",
    WebSocket,
    timeoutMs: 2000,
    token: async () => jwt(Math.floor(Date.now() / 1000) + 120),
  });
  t.after(() => client.close());
  await settle();
  sockets[0].open();
  await advance(60_000, 500);
  assert.equal(sockets[0].actions("refresh").length, 1);
  // Pongs keep coming, but no answer to the refresh.
  await advance(2000, 100);
  assert.equal(sockets.length, 2);
});

test("a token() that returns the same token does not loop refreshes", async (t) => {
  useFakeTime(t);
  const { WebSocket, sockets } = fakeSockets();
  const token = jwt(startS + 120);
  let calls = 0;
  const client = createClient({
    url: "ws://h/main",
    WebSocket,
    token: () => {
      calls++;
      return token;
    },
  });
  t.after(() => client.close());
  await settle();
  sockets[0].open();
  await advance(119_000, 500);
  assert.equal(sockets[0].actions("refresh").length, 0, "nothing new to send");
  assert.equal(sockets.length, 1);
  assert.ok(calls <= 8, `asked ${calls} times in a minute (every timeoutMs)`);
});

test("planned reconnect before the 2-hour cap: new socket first, messages on both once", async (t) => {
  fixRandom(t, 0);
  useFakeTime(t);
  const { WebSocket, sockets } = fakeSockets();
  const messages = [];
  const states = [];
  const client = createClient({
    url: "ws://h/main",
    WebSocket,
    keepAliveMs: 3 * 3600_000,
    token: async () => jwt(Math.floor(Date.now() / 1000) + 10 * HOUR_S),
  });
  client.on("message", (m) => messages.push(m.id));
  client.on("state", (s) => states.push(s));
  t.after(() => client.close());
  await settle();
  sockets[0].open();
  mock.timers.tick(2 * 3600_000 - 5 * 60_000 - 1);
  await settle();
  assert.equal(sockets.length, 1);
  assert.equal(sockets[0].closedWith, undefined);
  mock.timers.tick(1);
  await settle();
  assert.equal(sockets.length, 2, "planned reconnect at 1 h 55 min");
  sockets[0].receive({ id: "before", data: 0 });
  sockets[1].open();
  sockets[0].receive({ id: "both", data: 0 });
  sockets[1].receive({ id: "both", data: 0 });
  sockets[0].receive({ id: "late-on-old", data: 0 });
  sockets[1].receive({ id: "late-on-old", data: 0 });
  await advance(OVERLAP_MS, 10);
  assert.equal(sockets[0].closedWith.code, 1000);
  assert.deepEqual(messages, ["before", "both", "late-on-old"]);
  assert.deepEqual(states, ["connecting", "open"]);
  // The old socket's late close event changes nothing.
  sockets[0].serverClose(1000);
  await advance(60_000, 1000);
  assert.equal(sockets.length, 2);
});

test("the planned socket failing leaves the old one in use, and is retried", async (t) => {
  fixRandom(t, 0);
  const { sockets, record } = setup(t, { lifetimeMs: 60_000 });
  await settle();
  sockets[0].open();
  await advance(60_000, 500);
  assert.equal(sockets.length, 2);
  sockets[1].serverClose(1006);
  sockets[0].receive({ id: "still", data: 0 });
  assert.deepEqual(record.messages.map((m) => m.id), ["still"]);
  await advance(10, 1);
  assert.equal(sockets.length, 3, "retried");
  sockets[2].open();
  await advance(OVERLAP_MS, 10);
  assert.ok(sockets[0].closedWith);
  assert.deepEqual(record.states, ["connecting", "open"]);
});

test("the old socket lost during a planned reconnect: the new one takes over", async (t) => {
  fixRandom(t, 0);
  const { sockets, record } = setup(t, { lifetimeMs: 60_000 });
  await settle();
  sockets[0].open();
  await advance(60_000, 500);
  assert.equal(sockets.length, 2);
  sockets[0].serverClose(1001);
  assert.deepEqual(record.states, ["connecting", "open", "reconnecting"]);
  await advance(5000, 100);
  assert.equal(sockets.length, 2, "no second attempt beside the one on its way");
  sockets[1].open();
  assert.deepEqual(record.states, ["connecting", "open", "reconnecting", "open"]);
});

test("close(): state closed, sockets closed, no reconnect, no events after", async (t) => {
  fixRandom(t, 0.5);
  const { client, sockets, record } = setup(t);
  await settle();
  sockets[0].open();
  sockets[0].serverClose(1006);
  client.close();
  assert.deepEqual(record.states, ["connecting", "open", "reconnecting", "closed"]);
  await advance(120_000, 1000);
  assert.equal(sockets.length, 1);
  sockets[0].receive({ id: "after", data: 0 });
  assert.equal(record.messages.length, 0);
  client.close();
  assert.equal(record.states.length, 4);
});

test("close() while a token is being fetched opens no socket", async (t) => {
  useFakeTime(t);
  const { WebSocket, sockets } = fakeSockets();
  let release;
  const client = createClient({ url: "ws://h/main", WebSocket, token: () => new Promise((r) => (release = r)) });
  await settle();
  client.close();
  release(jwt(startS + HOUR_S));
  await advance(60_000, 1000);
  assert.equal(sockets.length, 0);
});

test("close() on an open socket closes it with 1000", async (t) => {
  const { client, sockets } = setup(t);
  await settle();
  sockets[0].open();
  client.close();
  assert.equal(sockets[0].closedWith.code, 1000);
  assert.equal(client.state, "closed");
});

test("on() returns an unsubscribe function", async (t) => {
  const { client, sockets } = setup(t);
  const seen = [];
  const off = client.on("message", (m) => seen.push(m.id));
  await settle();
  sockets[0].open();
  sockets[0].receive({ id: "a", data: 0 });
  off();
  sockets[0].receive({ id: "b", data: 0 });
  assert.deepEqual(seen, ["a"]);
});

test("without a WebSocket constructor (Node 20) createClient says what to pass", () => {
  assert.equal(globalThis.WebSocket, undefined);
  assert.throws(() => createClient({ url: "ws://h/main", token: () => "t" }), /pass options.WebSocket/);
});

test("a token() that throws synchronously counts as a failed attempt", async (t) => {
  fixRandom(t, 0);
  useFakeTime(t);
  const { WebSocket, sockets } = fakeSockets();
  let calls = 0;
  const client = createClient({
    url: "ws://h/main",
    WebSocket,
    token: () => {
      if (++calls === 1) throw new Error("no session");
      return jwt(startS + HOUR_S);
    },
  });
  t.after(() => client.close());
  await advance(10, 1);
  assert.equal(calls, 2);
  assert.equal(sockets.length, 1);
});

test("browsers: the online event ends a backoff wait at once; close() stops listening", async (t) => {
  fixRandom(t, 0.999);
  const events = new EventTarget();
  globalThis.addEventListener = events.addEventListener.bind(events);
  let removed = 0;
  globalThis.removeEventListener = (...args) => {
    removed++;
    events.removeEventListener(...args);
  };
  t.after(() => {
    delete globalThis.addEventListener;
    delete globalThis.removeEventListener;
  });
  const { client, sockets } = setup(t, { maxBackoffMs: 30_000 });
  await settle();
  sockets[0].open();
  sockets[0].serverClose(1006);
  await advance(10, 1);
  assert.equal(sockets.length, 1, "waiting out the backoff");
  events.dispatchEvent(new Event("online"));
  await settle();
  assert.equal(sockets.length, 2, "tried at once");
  sockets[1].open();
  events.dispatchEvent(new Event("online"));
  await settle();
  assert.equal(sockets.length, 2, "an open client ignores it");
  client.close();
  assert.equal(removed, 1, "close() removes its listener");
});
