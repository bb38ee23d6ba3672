import { test } from "node:test";
import assert from "node:assert/strict";
import { load } from "./load.mjs";

const api = await load("src/api.ts");
const session = await load("src/session.ts");

function fakeFetch(status, body, seen = []) {
  return async (path, init) => {
    seen.push({ path, init });
    return new Response(body === undefined ? "" : JSON.stringify(body), { status });
  };
}

test("an error answer keeps the API's code and message", () => {
  const error = api.errorFromAnswer(403, { error: "forbidden", message: "role admin required" });
  assert.equal(error.status, 403);
  assert.equal(error.code, "forbidden");
  assert.equal(error.message, "role admin required");
});

test("an error answer without a body still says what happened", () => {
  const error = api.errorFromAnswer(502, undefined);
  assert.equal(error.code, "http_502");
  assert.match(error.message, /502/);
});

test("a 401 tells onUnauthorized with the API's message and rejects", async () => {
  const told = [];
  const call = api.createApi({
    token: "t0k",
    onUnauthorized: (message) => told.push(message),
    fetch: fakeFetch(401, { error: "unauthorized", message: "token expired" }),
  });
  await assert.rejects(call("GET", "/v1/tenants"), (error) => error.status === 401 && error.message === "token expired");
  assert.deepEqual(told, ["token expired"]);
});

test("other errors do not sign out", async () => {
  const told = [];
  const call = api.createApi({
    token: "t",
    onUnauthorized: (message) => told.push(message),
    fetch: fakeFetch(404, { error: "not_found", message: "no such receipt" }),
  });
  await assert.rejects(call("GET", "/v1/messages/x"), (error) => error.code === "not_found");
  assert.deepEqual(told, []);
});

test("a call carries the bearer token and a JSON body, and answers the parsed JSON", async () => {
  const seen = [];
  const call = api.createApi({ token: "abc", fetch: fakeFetch(202, { id: "m1" }, seen) });
  assert.deepEqual(await call("POST", "/v1/messages", { data: 1 }), { id: "m1" });
  assert.equal(seen[0].path, "/v1/messages");
  assert.equal(seen[0].init.headers.authorization, "Bearer abc");
  assert.equal(seen[0].init.headers["content-type"], "application/json");
  assert.equal(seen[0].init.body, '{"data":1}');
  assert.ok(seen[0].init.signal, "every call is bounded by a timeout");
});

test("no answer is a network error, a timeout its own code", async () => {
  const down = api.createApi({ token: "t", fetch: async () => { throw new TypeError("fetch failed"); } });
  await assert.rejects(down("GET", "/v1/tenants"), (error) => error.status === 0 && error.code === "network");
  const slow = api.createApi({
    token: "t",
    fetch: async () => { throw new DOMException("timed out", "TimeoutError"); },
  });
  await assert.rejects(slow("GET", "/v1/tenants"), (error) => error.code === "timeout");
});

test("withQuery leaves out empty parameters and encodes the rest", () => {
  assert.equal(api.withQuery("/v1/dead-letters", { limit: 50, next: undefined, tenant: "" }), "/v1/dead-letters?limit=50");
  assert.equal(api.withQuery("/v1/messages/a", { tenant: "a b" }), "/v1/messages/a?tenant=a+b");
  assert.equal(api.withQuery("/x", {}), "/x");
});

test("sign-in refuses a publisher token (403) as not an admin token, with the API's message", async () => {
  const fetch = fakeFetch(403, { error: "forbidden", message: "role admin required" });
  const error = await session.signIn("pub", () => {}, fetch).catch((e) => e);
  const text = session.refusal(error);
  assert.match(text, /not an admin token/);
  assert.match(text, /role admin required/);
});

test("sign-in with an admin token answers the caller; its text names the scope", async () => {
  const answer = {
    caller: { tenant: "ops", user: "console", globalAdmin: true },
    tenants: [],
    listed: "all",
  };
  const s = await session.signIn("adm", () => {}, fakeFetch(200, answer));
  assert.equal(session.callerText(s.caller), "console@ops · global admin");
  assert.equal(
    session.callerText({ tenant: "acme", user: "alice", globalAdmin: false }),
    "alice@acme · admin of acme",
  );
});

test("the socket URL: the config's, else this host and the stage", () => {
  const loc = { protocol: "https:", host: "example.test:8443" };
  assert.equal(session.websocketUrl({ websocketUrl: "wss://x/y", stage: "main" }, loc), "wss://x/y");
  assert.equal(session.websocketUrl({ websocketUrl: null, stage: "dev" }, loc), "wss://example.test:8443/dev");
  assert.equal(
    session.websocketUrl({ websocketUrl: null, stage: "main" }, { protocol: "http:", host: "127.0.0.1:8080" }),
    "ws://127.0.0.1:8080/main",
  );
});

test("counts that stopped short are lower bounds", () => {
  assert.equal(session.countText(2, true), "2");
  assert.equal(session.countText(10000, false), "10000+");
});
