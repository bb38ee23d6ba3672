// Backoff with full jitter, the dedupe window and the JWT expiry reader.
import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, RecentIds, tokenExpiry } from "../dist/index.js";

test("backoff doubles its window per attempt up to the cap", () => {
  const top = () => 0.999999;
  assert.equal(backoffDelay(0, 500, 30_000, top), 499);
  assert.equal(backoffDelay(1, 500, 30_000, top), 999);
  assert.equal(backoffDelay(3, 500, 30_000, top), 3999);
  assert.equal(backoffDelay(6, 500, 30_000, top), 29_999);
  assert.equal(backoffDelay(60, 500, 30_000, top), 29_999);
  assert.equal(backoffDelay(5000, 500, 30_000, top), 29_999, "a huge attempt count stays finite");
});

test("full jitter: any delay from zero to the window, never beyond", () => {
  assert.equal(backoffDelay(4, 500, 30_000, () => 0), 0);
  let lowest = Infinity;
  let highest = -Infinity;
  for (let i = 0; i < 2000; i++) {
    const delay = backoffDelay(4, 500, 30_000);
    assert.ok(Number.isInteger(delay) && delay >= 0 && delay < 8000, `delay ${delay}`);
    lowest = Math.min(lowest, delay);
    highest = Math.max(highest, delay);
  }
  // 2000 uniform draws: the chance of missing either outer tenth is about 2 × 0.9^2000.
  assert.ok(lowest < 800 && highest > 7200, `spread ${lowest}..${highest}`);
});

test("recent ids: a repeat is refused; the oldest id falls out past the limit", () => {
  const ids = new RecentIds(3);
  assert.equal(ids.add("a"), true);
  assert.equal(ids.add("a"), false);
  ids.add("b");
  ids.add("c");
  ids.add("d"); // evicts a
  assert.equal(ids.size, 3);
  assert.equal(ids.add("b"), false);
  assert.equal(ids.add("a"), true, "a fell out of the window");
});

function jwt(payload) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "HS256", typ: "JWT" })}.${part(payload)}.c2ln`;
}

test("token expiry is read from the payload without verification", () => {
  assert.equal(tokenExpiry(jwt({ sub: "alice", exp: 1_900_000_000 })), 1_900_000_000);
  // Payload lengths that need one and two padding characters, and URL-safe characters.
  assert.equal(tokenExpiry(jwt({ exp: 1, s: "é??>>" })), 1);
  assert.equal(tokenExpiry(jwt({ exp: 22, s: "ab" })), 22);
  assert.equal(tokenExpiry(jwt({ sub: "no exp" })), undefined);
  assert.equal(tokenExpiry(jwt({ exp: "soon" })), undefined);
  assert.equal(tokenExpiry("not-a-jwt"), undefined);
  assert.equal(tokenExpiry("a.%%%.b"), undefined);
  assert.equal(tokenExpiry(""), undefined);
});
