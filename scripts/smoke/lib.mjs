// Building blocks of the smoke test (scripts/smoke-aws.sh): where the deployment is, tokens
// from `switchboard token`, WebSocket clients that keep every frame with its exact byte
// length, the publish/presence/receipt HTTP calls, and the pass/fail table.

import { execFileSync } from "node:child_process";
import { readFileSync, existsSync } from "node:fs";
import { performance } from "node:perf_hooks";
import WebSocket from "ws";

/** The two endpoints from `<websocket-url> <publish-api-url>` or a `cdk deploy --outputs-file` JSON. */
export function endpoints(args) {
  let wsUrl;
  let publishUrl;
  if (args.length === 1 && existsSync(args[0])) {
    const outputs = JSON.parse(readFileSync(args[0], "utf8"));
    const stacks = Object.values(outputs).filter((s) => s && typeof s === "object");
    const find = (name) => {
      for (const stack of stacks) {
        const key = Object.keys(stack).find((k) => k === name || k.startsWith(name));
        if (key) return stack[key];
      }
      return undefined;
    };
    wsUrl = find("WebSocketUrl");
    publishUrl = find("PublishUrl");
    if (!wsUrl || !publishUrl) {
      throw new Error(`${args[0]}: no WebSocketUrl/PublishUrl outputs (a cdk deploy --outputs-file JSON?)`);
    }
  } else if (args.length === 2) {
    [wsUrl, publishUrl] = args;
  } else {
    throw new Error("usage: smoke-aws.sh <websocket-url> <publish-api-url> | <cdk-outputs.json>");
  }
  // PublishUrl is `<api>/v1/messages`; a bare base URL is accepted too.
  const api = publishUrl.replace(/\/+$/, "").replace(/\/v1\/messages$/, "");
  return { wsUrl: wsUrl.replace(/\/+$/, ""), api };
}

/** Mints tokens with `switchboard token` (ES256 with SMOKE_KEY, else JWT_HS256_SECRET). */
export function tokenMinter(bin, key) {
  return (tenant, user, roles = []) => {
    const args = ["token", "--tenant", tenant, "--user", user, "--ttl", "30m"];
    for (const role of roles) args.push("--role", role);
    if (key) args.push("--key", key);
    return execFileSync(bin, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A client socket: every text frame kept in arrival order with its byte length. */
export class Socket {
  static open(wsUrl, token, transport = "query") {
    return new Promise((resolve, reject) => {
      const ws =
        transport === "bearer"
          ? new WebSocket(wsUrl, ["bearer", token])
          : new WebSocket(`${wsUrl}?token=${encodeURIComponent(token)}`);
      ws.once("unexpected-response", (_req, res) => {
        reject(new Error(`handshake answered HTTP ${res.statusCode}`));
        ws.terminate();
      });
      ws.once("error", (error) => reject(error));
      ws.once("open", () => resolve(new Socket(ws)));
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.frames = [];
    this.waiters = [];
    this.closed = null;
    this.lastCursor = null;
    /** Ids of every message frame received, even those taken off the queue. */
    this.seenIds = new Set();
    this.closedPromise = new Promise((resolve) => {
      ws.on("close", (code) => {
        this.closed = code;
        for (const waiter of this.waiters.splice(0)) waiter.fail(new Error(`socket closed (code ${code})`));
        resolve(code);
      });
    });
    ws.on("error", () => {});
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      const bytes = Buffer.isBuffer(data) ? data.length : Buffer.byteLength(String(data));
      const text = data.toString("utf8");
      let json;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      if (json && typeof json.cursor === "string") this.lastCursor = json.cursor;
      if (json && typeof json.id === "string") this.seenIds.add(json.id);
      this.frames.push({ bytes, text, json, at: performance.now() });
      this.wake();
    });
  }

  wake() {
    for (const waiter of [...this.waiters]) {
      const index = this.frames.findIndex((f) => waiter.match(f));
      if (index >= 0) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.done(this.frames.splice(index, 1)[0]);
      }
    }
  }

  /** The first frame (taken off the queue) that `match` accepts, within `timeoutMs`. */
  next(match, timeoutMs, what = "a frame") {
    const index = this.frames.findIndex(match);
    if (index >= 0) return Promise.resolve(this.frames.splice(index, 1)[0]);
    if (this.closed !== null) return Promise.reject(new Error(`socket closed (code ${this.closed})`));
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        done: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
        fail: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Frames with this message id (taken off the queue). */
  take(id) {
    const mine = this.frames.filter((f) => f.json?.id === id);
    this.frames = this.frames.filter((f) => f.json?.id !== id);
    return mine;
  }

  send(value) {
    this.ws.send(JSON.stringify(value));
  }

  async whoami() {
    this.send({ action: "whoami" });
    const frame = await this.next((f) => f.json?.type === "whoami", 10_000, "whoami answer");
    this.connectionId = frame.json.connectionId;
    return frame.json;
  }

  close() {
    if (this.closed === null) this.ws.close(1000);
    return this.closedPromise;
  }
}

/** The publish API, presence and receipts with one bearer token. */
export class Api {
  constructor(base, token) {
    this.base = base;
    this.token = token;
  }

  async call(method, path, body) {
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: response.status, body: json };
  }

  publish(envelope) {
    return this.call("POST", "/v1/messages", envelope);
  }

  receipt(tenant, id) {
    return this.call("GET", `/v1/messages/${encodeURIComponent(id)}?tenant=${encodeURIComponent(tenant)}`);
  }

  userPresence(tenant, user) {
    return this.call("GET", `/v1/tenants/${encodeURIComponent(tenant)}/users/${encodeURIComponent(user)}/presence`);
  }

  /** Polls the receipt until `done(receipt)` or `timeoutMs`: the last answer. */
  async receiptUntil(tenant, id, done, timeoutMs) {
    const deadline = performance.now() + timeoutMs;
    let last;
    do {
      last = await this.receipt(tenant, id);
      if (last.status === 200 && done(last.body)) return last;
      await sleep(200);
    } while (performance.now() < deadline);
    return last;
  }
}

/** Runs checks, times them and prints the table. A check returns `{status, detail}`. */
export class Checks {
  constructor() {
    this.rows = [];
  }

  async run(name, fn) {
    const started = performance.now();
    let row;
    try {
      const result = (await fn()) ?? {};
      row = { name, status: result.status ?? "pass", detail: result.detail ?? "" };
    } catch (error) {
      row = { name, status: "FAIL", detail: error?.message ?? String(error) };
    }
    row.ms = Math.round(performance.now() - started);
    this.rows.push(row);
    console.error(`smoke: ${row.status.padEnd(4)} ${name} (${row.ms} ms) ${row.detail}`);
    return row.status !== "FAIL";
  }

  failed() {
    return this.rows.filter((r) => r.status === "FAIL").length;
  }

  print(header) {
    const lines = [header, "", "| check | result | time | detail |", "|---|---|---:|---|"];
    for (const r of this.rows) {
      lines.push(`| ${r.name} | ${r.status} | ${r.ms} ms | ${r.detail.replaceAll("|", "\\|")} |`);
    }
    const count = (s) => this.rows.filter((r) => r.status === s).length;
    lines.push("", `${count("pass")} passed, ${count("FAIL")} failed, ${count("skip")} skipped`);
    console.log(lines.join("\n"));
  }
}
