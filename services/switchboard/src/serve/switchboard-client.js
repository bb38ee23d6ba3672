// Generated from clients/js/src by `npm run bundle` in clients/js: do not edit.
// The switchboard binary serves it to the demo page (include_str!).
// src/backoff.ts
function backoffDelay(attempt, baseMs, maxMs, random = Math.random) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.floor(random() * ceiling);
}

// src/dedupe.ts
var RecentIds = class {
  constructor(limit) {
    this.limit = limit;
    this.ids = /* @__PURE__ */ new Set();
  }
  /** Records `id`; false when it was already among the recent ones. */
  add(id) {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.limit) {
      const oldest = this.ids.values().next().value;
      if (oldest !== void 0) this.ids.delete(oldest);
    }
    return true;
  }
  get size() {
    return this.ids.size;
  }
};

// src/jwt.ts
function tokenExpiry(token) {
  const payload = token.split(".")[1];
  if (!payload) return void 0;
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(base64 + "=".repeat((4 - base64.length % 4) % 4)));
    const exp = claims?.exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp : void 0;
  } catch {
    return void 0;
  }
}

// src/client.ts
var MAX_URL_CHARS = 4096;
var BASE_BACKOFF_MS = 500;
var STABLE_MS = 1e4;
var OVERLAP_MS = 1e3;
var RESUME_BUFFER_LIMIT = 1e4;
var REFRESH_BEFORE_MS = 6e4;
var noop = () => {
};
function createClient(options) {
  const found = options.WebSocket ?? globalThis.WebSocket;
  if (!found) {
    throw new TypeError("no WebSocket constructor: pass options.WebSocket (e.g. from the ws package)");
  }
  const WS = found;
  const keepAliveMs = options.keepAliveMs ?? 24e4;
  const maxBackoffMs = options.maxBackoffMs ?? 3e4;
  const lifetimeMs = options.lifetimeMs ?? 69e5;
  const timeoutMs = options.timeoutMs ?? 1e4;
  const recent = new RecentIds(options.dedupeWindow ?? 1e3);
  const listeners = {
    message: /* @__PURE__ */ new Set(),
    state: /* @__PURE__ */ new Set(),
    gap: /* @__PURE__ */ new Set()
  };
  const live = /* @__PURE__ */ new Set();
  let state;
  let cursor = options.since;
  let current;
  let switching = false;
  let attempt = 0;
  let retryTimer;
  let refreshSupported = true;
  let closed = false;
  function emit(event, ...args) {
    for (const listener of [...listeners[event]]) {
      try {
        listener(...args);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
  function setState(next) {
    if (next !== state) {
      state = next;
      emit("state", next);
    }
  }
  function after(conn, name, ms, fn) {
    cancel(conn, name);
    conn.timers.set(
      name,
      setTimeout(() => {
        conn.timers.delete(name);
        fn();
      }, ms)
    );
  }
  function cancel(conn, name) {
    clearTimeout(conn.timers.get(name));
    conn.timers.delete(name);
  }
  function cancelAll(conn) {
    conn.timers.forEach(clearTimeout);
    conn.timers.clear();
  }
  function fetchToken() {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("token() timed out")), timeoutMs);
      new Promise((r) => r(options.token())).then(
        (token) => {
          clearTimeout(timer);
          if (typeof token === "string" && token !== "") resolve(token);
          else reject(new TypeError("token() gave no token"));
        },
        (error) => {
          clearTimeout(timer);
          reject(error);
        }
      );
    });
  }
  function send(conn, frame) {
    try {
      conn.ws.send(JSON.stringify(frame));
    } catch {
    }
  }
  function deliver(message) {
    if (closed || !recent.add(message.id)) return;
    if (message.cursor !== void 0 && (cursor === void 0 || message.cursor > cursor)) {
      cursor = message.cursor;
    }
    emit("message", message);
  }
  function release(conn) {
    const held = conn.held;
    conn.held = void 0;
    cancel(conn, "resume");
    if (!held) return;
    const sorted = held.filter((m) => m.cursor !== void 0).sort((a, b) => a.cursor < b.cursor ? -1 : a.cursor === b.cursor ? 0 : 1);
    let next = 0;
    for (const message of held) deliver(message.cursor === void 0 ? message : sorted[next++]);
  }
  function retry() {
    clearTimeout(retryTimer);
    const delay = backoffDelay(attempt++, BASE_BACKOFF_MS, maxBackoffMs);
    retryTimer = setTimeout(() => {
      retryTimer = void 0;
      if (current) replace();
      else void connect(false);
    }, delay);
  }
  function replace(token) {
    if (closed || switching || !current) return;
    switching = true;
    void connect(true, token);
  }
  async function connect(planned, token) {
    let conn;
    try {
      const jwt = token ?? await fetchToken();
      if (closed) return;
      let url = options.url;
      let query = options.transport === "query";
      if (query) {
        const parsed = new URL(url);
        parsed.searchParams.set("token", jwt);
        const length = parsed.href.length;
        query = length <= MAX_URL_CHARS;
        if (query) url = parsed.href;
        else options.debug?.(`?token= would make the URL ${length} > ${MAX_URL_CHARS} characters: using the bearer subprotocol`);
      }
      const ws = query ? new WS(url) : new WS(url, ["bearer", jwt]);
      conn = {
        ws,
        token: jwt,
        open: false,
        gone: false,
        openedAt: 0,
        timers: /* @__PURE__ */ new Map(),
        waiting: [],
        held: void 0,
        renewal: void 0
      };
    } catch {
      if (closed) return;
      if (planned) switching = false;
      else setState("reconnecting");
      retry();
      return;
    }
    live.add(conn);
    if (!planned) current = conn;
    conn.ws.onopen = () => opened(conn);
    conn.ws.onmessage = (event) => received(conn, event.data);
    conn.ws.onclose = () => lost(conn);
    conn.ws.onerror = noop;
    after(conn, "open", timeoutMs, () => lost(conn));
  }
  function opened(conn) {
    cancel(conn, "open");
    conn.open = true;
    conn.openedAt = Date.now();
    const old = current !== conn ? current : void 0;
    switching = false;
    current = conn;
    if (old) {
      cancelAll(old);
      release(old);
      after(old, "retire", OVERLAP_MS, () => {
        old.ws.close(1e3, "replaced");
        lost(old);
      });
    }
    setState("open");
    keepAlive(conn);
    after(conn, "lifetime", lifetimeMs, () => replace());
    scheduleRefresh(conn, tokenExpiry(conn.token));
    if (cursor !== void 0) {
      conn.held = [];
      conn.waiting.push("resume");
      send(conn, { action: "resume", since: cursor });
      after(conn, "resume", timeoutMs, () => {
        conn.waiting = conn.waiting.filter((r) => r !== "resume");
        release(conn);
      });
    }
  }
  function keepAlive(conn) {
    after(conn, "ping", keepAliveMs, () => {
      send(conn, { action: "ping" });
      if (!conn.timers.has("pong")) after(conn, "pong", timeoutMs, () => lost(conn));
      keepAlive(conn);
    });
  }
  function scheduleRefresh(conn, exp) {
    if (exp === void 0) return;
    const remaining = exp * 1e3 - Date.now();
    const delay = Math.max(0, remaining - Math.min(REFRESH_BEFORE_MS, remaining / 2));
    if (delay < lifetimeMs) after(conn, "refresh", delay, () => void refresh(conn));
  }
  async function refresh(conn) {
    let token;
    try {
      token = await fetchToken();
    } catch {
      token = void 0;
    }
    if (closed || conn !== current) return;
    if (token === void 0 || (tokenExpiry(token) ?? Infinity) <= (tokenExpiry(conn.token) ?? Infinity)) {
      after(conn, "refresh", timeoutMs, () => void refresh(conn));
      return;
    }
    if (!refreshSupported) {
      replace(token);
      return;
    }
    conn.renewal = token;
    conn.waiting.push("refresh");
    send(conn, { action: "refresh", token });
    after(conn, "refreshed", timeoutMs, () => {
      conn.waiting = conn.waiting.filter((r) => r !== "refresh");
      replace(token);
    });
  }
  function take(conn, request) {
    const index = conn.waiting.indexOf(request);
    if (index >= 0) conn.waiting.splice(index, 1);
    return index >= 0;
  }
  function received(conn, raw) {
    if (typeof raw !== "string") return;
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    cancel(conn, "pong");
    if (typeof frame.type === "string") {
      answered(conn, frame);
      return;
    }
    if (typeof frame.id !== "string" || !("data" in frame)) return;
    const message = { id: frame.id, data: frame.data };
    if (typeof frame.cursor === "string") message.cursor = frame.cursor;
    if (!conn.held) deliver(message);
    else if (conn.held.push(message) >= RESUME_BUFFER_LIMIT) release(conn);
  }
  function answered(conn, frame) {
    if (frame.type === "resumed") {
      take(conn, "resume");
      if (frame.complete === false) emit("gap");
      release(conn);
    } else if (frame.type === "refreshed") {
      if (take(conn, "refresh") && conn.renewal) {
        cancel(conn, "refreshed");
        conn.token = conn.renewal;
        scheduleRefresh(conn, typeof frame.exp === "number" ? frame.exp : tokenExpiry(conn.token));
      }
    } else if (frame.type === "error") {
      const request = frame.error === "invalid_cursor" ? take(conn, "resume") ? "resume" : void 0 : conn.waiting.shift();
      if (request === "resume") {
        if (frame.error !== "unknown_action") {
          cursor = void 0;
          emit("gap");
        }
        release(conn);
      } else if (request === "refresh") {
        cancel(conn, "refreshed");
        if (frame.error === "unknown_action" || frame.error === "refresh_unavailable") {
          refreshSupported = false;
        }
        replace(conn.renewal);
      }
    }
  }
  function lost(conn) {
    if (conn.gone) return;
    conn.gone = true;
    live.delete(conn);
    cancelAll(conn);
    const ws = conn.ws;
    ws.onopen = ws.onmessage = ws.onclose = noop;
    try {
      ws.close(1e3);
    } catch {
    }
    release(conn);
    if (closed) return;
    if (conn.open && Date.now() - conn.openedAt >= STABLE_MS) attempt = 0;
    if (conn === current) {
      current = void 0;
      setState("reconnecting");
      if (!switching) retry();
    } else if (!conn.open) {
      switching = false;
      retry();
    }
  }
  const events = globalThis;
  const online = () => {
    if (closed || current || retryTimer === void 0) return;
    clearTimeout(retryTimer);
    retryTimer = void 0;
    void connect(false);
  };
  events.addEventListener?.("online", online);
  queueMicrotask(() => {
    if (closed) return;
    setState("connecting");
    void connect(false);
  });
  return {
    on(event, listener) {
      listeners[event].add(listener);
      return () => {
        listeners[event].delete(listener);
      };
    },
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      events.removeEventListener?.("online", online);
      for (const conn of [...live]) lost(conn);
      current = void 0;
      setState("closed");
    },
    get state() {
      return state ?? "connecting";
    },
    get cursor() {
      return cursor;
    }
  };
}
export {
  BASE_BACKOFF_MS,
  MAX_URL_CHARS,
  OVERLAP_MS,
  REFRESH_BEFORE_MS,
  RecentIds,
  STABLE_MS,
  backoffDelay,
  createClient,
  tokenExpiry
};
