import { test } from "node:test";
import assert from "node:assert/strict";
import { load } from "./load.mjs";

const presence = await load("src/views/presence.tsx");
const dead = await load("src/views/dead-letters.tsx");
const routes = await load("src/routes.ts");

test("a user's presence reads as online with its count, or offline", () => {
  const at = "2026-01-01T00:00:00Z";
  const two = [{ connectionId: "a", connectedAt: at }, { connectionId: "b", connectedAt: at }];
  assert.equal(presence.userPresenceText({ user: "alice", online: true, connections: two }), "alice: online, 2 connections");
  assert.equal(presence.userPresenceText({ user: "alice", online: true, connections: two.slice(1) }), "alice: online, 1 connection");
  assert.equal(presence.userPresenceText({ user: "alice", online: false, connections: [] }), "alice: offline");
});

test("a dead letter's tenant: the API's, else its envelope's, else none", () => {
  const letter = { id: "1", error: "e", receiveCount: 1, deadAt: "" };
  assert.equal(dead.letterTenant({ ...letter, body: "{}", tenant: "acme" }), "acme");
  assert.equal(dead.letterTenant({ ...letter, body: '{"target":{"type":"tenant","tenant":"beta"}}' }), "beta");
  assert.equal(dead.letterTenant({ ...letter, body: '{"target":{"type":"broadcast"}}' }), "");
  assert.equal(dead.letterTenant({ ...letter, body: "not json" }), "");
});

test("hash routes pick the view; anything else is the overview", () => {
  assert.equal(routes.routeOf("#/dead-letters"), "dead-letters");
  assert.equal(routes.routeOf("#/usage"), "usage");
  assert.equal(routes.routeOf(""), "overview");
  assert.equal(routes.routeOf("#/nope"), "overview");
  assert.deepEqual(
    routes.ROUTES.map((r) => r.label),
    ["Overview", "Presence", "Send", "Dead letters", "Usage"],
  );
});
