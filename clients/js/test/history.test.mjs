// The client over real sockets (the ws package, on 127.0.0.1) against a small fake of the
// server's history contract (docs/design.md: History and resume): cursors on every frame, `resume` answered with what
// came after `since` and then `resumed`. The fake ends every socket after 300 ms (as the
// server does at its lifetime or idle limit) while messages keep coming: the client must
// hand out every message once, in cursor order.
import { test } from "node:test";
import assert from "node:assert/strict";
import WebSocket, { WebSocketServer } from "ws";
import { createClient } from "../dist/index.js";

function fakeHistoryServer({ lifetimeMs }) {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0, handleProtocols: () => "bearer" });
  const listening = new Promise((resolve) => server.on("listening", resolve));
  const history = [];
  const live = new Set();
  let seq = 0;
  let resumes = 0;
  server.on("connection", (socket) => {
    live.add(socket);
    const timer = setTimeout(() => socket.close(1001, "lifetime"), lifetimeMs);
    socket.on("close", () => {
      clearTimeout(timer);
      live.delete(socket);
    });
    socket.on("message", (raw) => {
      const frame = JSON.parse(raw.toString());
      if (frame.action === "ping") socket.send(JSON.stringify({ type: "pong" }));
      else if (frame.action === "resume") {
        resumes++;
        const missed = history.filter((entry) => entry.cursor > frame.since);
        for (const entry of missed) socket.send(entry.frame);
        socket.send(JSON.stringify({ type: "resumed", count: missed.length, complete: true }));
      } else socket.send(JSON.stringify({ type: "error", error: "unknown_action" }));
    });
  });
  return {
    listening,
    url: () => `ws://127.0.0.1:${server.address().port}/main`,
    publish(id, data) {
      const cursor = `${String(Date.now()).padStart(13, "0")}-${String(++seq).padStart(6, "0")}`;
      const frame = JSON.stringify({ id, cursor, data });
      history.push({ cursor, frame });
      for (const socket of live) if (socket.readyState === WebSocket.OPEN) socket.send(frame);
    },
    get resumes() {
      return resumes;
    },
    close: () => new Promise((resolve) => {
      for (const socket of live) socket.terminate();
      server.close(resolve);
    }),
  };
}

test("messages published while sockets keep ending arrive once each, in order", { timeout: 20000 }, async () => {
  const server = fakeHistoryServer({ lifetimeMs: 300 });
  await server.listening;
  const ids = [];
  const states = [];
  let gaps = 0;
  const client = createClient({
    url: server.url(),
    WebSocket,
    maxBackoffMs: 100,
    token: () => "header.payload.signature",
  });
  client.on("message", (m) => ids.push(m.id));
  client.on("state", (s) => states.push(s));
  client.on("gap", () => gaps++);
  try {
    while (states.at(-1) !== "open") await new Promise((r) => setTimeout(r, 5));
    const expected = [];
    for (let n = 0; n < 300; n++) {
      server.publish(`m${n}`, { n });
      expected.push(`m${n}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const deadline = Date.now() + 5000;
    while (ids.length < expected.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(ids, expected);
    assert.equal(gaps, 0);
    assert.ok(server.resumes >= 3, `resumed ${server.resumes} times`);
  } finally {
    client.close();
    await server.close();
  }
});
