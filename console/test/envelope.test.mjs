import { test } from "node:test";
import assert from "node:assert/strict";
import { load } from "./load.mjs";

const env = await load("src/envelope.ts");

const form = {
  targetType: "users",
  tenant: "acme",
  users: " alice, bob ,, ",
  connections: "",
  data: '{"text":"hi"}',
  id: "",
  expiresIn: "",
  pushTitle: "",
  pushBody: "",
};
const now = new Date("2026-01-01T00:00:00Z");

test("broadcast is offered to a global admin only", () => {
  assert.deepEqual(env.targetTypes(true), ["users", "tenant", "connections", "broadcast"]);
  assert.deepEqual(env.targetTypes(false), ["users", "tenant", "connections"]);
});

test("the data editor's JSON is checked as typed", () => {
  assert.deepEqual(env.checkJson('{"a":[1,2]}'), { ok: true, value: { a: [1, 2] } });
  assert.equal(env.checkJson("42").ok, true);
  const bad = env.checkJson('{"a":');
  assert.equal(bad.ok, false);
  assert.match(bad.message, /^Invalid JSON/);
  assert.equal(env.checkJson("   ").ok, false);
  assert.equal(env.formatJson('{"a":1}'), '{\n  "a": 1\n}');
  assert.equal(env.formatJson("{oops"), "{oops", "invalid JSON is left as typed");
});

test("a users envelope lists the trimmed users", () => {
  assert.deepEqual(env.buildEnvelope(form, now, false), {
    ok: true,
    envelope: { target: { type: "users", tenant: "acme", users: ["alice", "bob"] }, data: { text: "hi" } },
  });
});

test("tenant, connections and broadcast envelopes", () => {
  assert.deepEqual(env.buildEnvelope({ ...form, targetType: "tenant" }, now, false).envelope.target, {
    type: "tenant",
    tenant: "acme",
  });
  assert.deepEqual(
    env.buildEnvelope({ ...form, targetType: "connections", connections: "c1,c2" }, now, false).envelope.target,
    { type: "connections", tenant: "acme", connectionIds: ["c1", "c2"] },
  );
  assert.deepEqual(
    env.buildEnvelope({ ...form, targetType: "broadcast", tenant: "" }, now, false).envelope.target,
    { type: "broadcast" },
  );
});

test("id, expiry and push are added when given; push only when on and for users/tenant", () => {
  const built = env.buildEnvelope({ ...form, id: " m-1 ", expiresIn: "90", pushTitle: "Hi" }, now, true);
  assert.equal(built.envelope.id, "m-1");
  assert.equal(built.envelope.expiresAt, "2026-01-01T00:01:30.000Z");
  assert.deepEqual(built.envelope.push, { title: "Hi" });
  assert.equal(env.buildEnvelope({ ...form, pushTitle: "Hi" }, now, false).envelope.push, undefined);
  assert.equal(
    env.buildEnvelope({ ...form, targetType: "connections", connections: "c", pushBody: "b" }, now, true).envelope.push,
    undefined,
  );
});

test("what is missing is named", () => {
  assert.match(env.buildEnvelope({ ...form, users: " , " }, now, false).message, /^Users/);
  assert.match(env.buildEnvelope({ ...form, targetType: "connections" }, now, false).message, /^Connections/);
  assert.match(env.buildEnvelope({ ...form, tenant: " " }, now, false).message, /^Tenant/);
  assert.match(env.buildEnvelope({ ...form, expiresIn: "-3" }, now, false).message, /^Expires in seconds/);
  assert.match(env.buildEnvelope({ ...form, data: "{" }, now, false).message, /^Invalid JSON/);
});
