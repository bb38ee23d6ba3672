// A fake WebSocket constructor that records every socket the client creates, and helpers
// to drive it as the server would. Time is node:test's mock timers (setTimeout and Date).
import { mock } from "node:test";

export const START = 1_700_000_000_000;

export function fakeSockets() {
  const sockets = [];
  class FakeSocket {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.sent = [];
      this.sentAt = []; // Date.now() (fake) of each frame in `sent`
      this.closedWith = undefined;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      sockets.push(this);
    }
    send(text) {
      if (this.closedWith) throw new Error("send on a closed socket");
      this.sent.push(JSON.parse(text));
      this.sentAt.push(Date.now());
    }
    close(code, reason) {
      this.closedWith ??= { code, reason };
    }
    // Server side.
    open() {
      this.onopen?.({});
    }
    receive(frame) {
      this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
    }
    serverClose(code = 1001) {
      this.closedWith ??= { code, byServer: true };
      this.onclose?.({ code });
    }
    actions(name) {
      return this.sent.filter((f) => f.action === name);
    }
    /** When each `name` action was sent, in ms since START. */
    sentTimes(name) {
      return this.sentAt.filter((_, i) => this.sent[i].action === name).map((at) => at - START);
    }
  }
  return { WebSocket: FakeSocket, sockets };
}

/** A JWT-shaped token (unsigned) expiring at `exp` (epoch seconds). */
export function jwt(exp, sub = "alice") {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub, tenant: "demo", exp })}.c2ln`;
}

/** Lets pending promise callbacks run (token() is async); setImmediate is not mocked. */
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}

export function useFakeTime(t) {
  mock.timers.enable({ apis: ["setTimeout", "Date"], now: START });
  t.after(() => mock.timers.reset());
}

/** Advances fake time by `ms`, letting promise callbacks run as timers fire. */
export async function advance(ms, step = 50) {
  for (let left = ms; left > 0; left -= step) {
    mock.timers.tick(Math.min(step, left));
    await settle();
  }
}
