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
function decodeBase64Url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return atob(base64 + "=".repeat((4 - base64.length % 4) % 4));
}
function tokenExpiry(token) {
  const payload = token.split(".")[1];
  if (!payload) return void 0;
  try {
    const claims = JSON.parse(decodeBase64Url(payload));
    const exp = claims?.exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp : void 0;
  } catch {
    return void 0;
  }
}

// src/push.ts
var PushError = class extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
    this.name = "PushError";
  }
};
function apiUrlOf(socketUrl) {
  const url = new URL(socketUrl);
  return `${url.protocol === "wss:" ? "https:" : "http:"}//${url.host}`;
}
function keyBytes(key) {
  let binary;
  try {
    binary = decodeBase64Url(key);
  } catch {
    binary = "";
  }
  if (binary.length !== 65 || binary.charCodeAt(0) !== 4) {
    throw new PushError("key_unavailable", "the VAPID public key is not a base64url uncompressed P-256 point");
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
function sameKey(key, bytes) {
  if (!key || key.byteLength !== bytes.length) return false;
  const other = new Uint8Array(key);
  return bytes.every((b, i) => b === other[i]);
}
function createPush(deps) {
  let registered;
  async function fetchKey(apiUrl) {
    const fetcher = deps.fetch ?? globalThis.fetch;
    if (!fetcher) throw new PushError("key_unavailable", "no fetch: pass options.vapidPublicKey or the client's fetch");
    const url = `${apiUrl.replace(/\/+$/, "")}/v1/push/vapid-public-key`;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), deps.timeoutMs);
    try {
      const res = await fetcher(url, { signal: abort.signal });
      if (res.status === 404) throw new PushError("not_configured", `Web Push is not configured on this server (404 from ${url})`);
      if (!res.ok) throw new PushError("key_unavailable", `${url} answered ${res.status}`);
      const body = await res.json();
      if (typeof body?.publicKey !== "string") throw new PushError("key_unavailable", `${url} sent no publicKey`);
      return body.publicKey;
    } catch (error) {
      if (error instanceof PushError) throw error;
      const why = abort.signal.aborted ? `no answer within ${deps.timeoutMs} ms` : String(error);
      throw new PushError("key_unavailable", `${url}: ${why}`);
    } finally {
      clearTimeout(timer);
    }
  }
  function manager(registration) {
    const found = registration?.pushManager;
    if (!found) throw new PushError("unsupported", "this browser has no PushManager (Web Push)");
    return found;
  }
  return {
    async subscribe(registration, options = {}) {
      const pushManager = manager(registration);
      const key = keyBytes(options.vapidPublicKey ?? await fetchKey(options.apiUrl ?? deps.apiUrl()));
      let subscription = await pushManager.getSubscription();
      if (subscription && !sameKey(subscription.options?.applicationServerKey, key)) {
        await subscription.unsubscribe();
        subscription = null;
      }
      subscription ?? (subscription = await pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key.buffer }));
      const answer = await deps.call({ action: "push_subscribe", subscription: subscription.toJSON() }, "push_subscribed");
      if (typeof answer.id !== "string") throw new PushError("invalid_answer", "push_subscribed carried no id");
      registered = { id: answer.id, subscription };
      return answer.id;
    },
    async unsubscribe(registration) {
      const mine = registered;
      registered = void 0;
      let failure;
      if (mine) {
        try {
          await deps.call({ action: "push_unsubscribe", id: mine.id }, "push_unsubscribed");
        } catch (error) {
          if (!(error instanceof PushError && error.code === "unknown_device")) failure = error;
        }
      }
      const subscription = mine?.subscription ?? (registration ? await manager(registration).getSubscription() : null);
      const ended = subscription ? await subscription.unsubscribe() : false;
      if (failure !== void 0) throw failure;
      return ended;
    }
  };
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
  const keepAliveMs = options.keepAliveMs ?? 54e4;
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
  const calls = /* @__PURE__ */ new Set();
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
    for (const call2 of calls) if (!call2.conn) dispatch(conn, call2);
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
  function call(frame, answer) {
    return new Promise((resolve, reject) => {
      if (closed) {
        reject(new PushError("closed", "the client is closed"));
        return;
      }
      const pending = { frame, answer, conn: void 0, timer: void 0, resolve, reject };
      pending.timer = setTimeout(() => {
        finish(pending, new PushError("timeout", `no ${answer} within ${timeoutMs} ms`));
      }, timeoutMs);
      calls.add(pending);
      if (current?.open) dispatch(current, pending);
    });
  }
  function dispatch(conn, pending) {
    pending.conn = conn;
    conn.waiting.push(pending);
    send(conn, pending.frame);
  }
  function finish(pending, outcome) {
    if (!calls.delete(pending)) return;
    clearTimeout(pending.timer);
    if (pending.conn) take(pending.conn, pending);
    if (outcome instanceof PushError) pending.reject(outcome);
    else pending.resolve(outcome);
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
    } else if (frame.type !== "error") {
      const pending = conn.waiting.find((r) => typeof r === "object" && r.answer === frame.type);
      if (pending) finish(pending, frame);
    } else {
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
      } else if (typeof request === "object") {
        const code = typeof frame.error === "string" ? frame.error : "error";
        finish(request, new PushError(code, typeof frame.message === "string" ? frame.message : code));
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
    for (const pending of calls) {
      if (pending.conn === conn) finish(pending, new PushError("connection_lost", "the socket closed before the answer"));
    }
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
      for (const pending of calls) finish(pending, new PushError("closed", "the client is closed"));
      for (const conn of [...live]) lost(conn);
      current = void 0;
      setState("closed");
    },
    get state() {
      return state ?? "connecting";
    },
    get cursor() {
      return cursor;
    },
    push: createPush({
      call,
      apiUrl: () => options.apiUrl ?? apiUrlOf(options.url),
      fetch: options.fetch,
      timeoutMs
    })
  };
}
export {
  BASE_BACKOFF_MS,
  MAX_URL_CHARS,
  OVERLAP_MS,
  PushError,
  REFRESH_BEFORE_MS,
  RecentIds,
  STABLE_MS,
  apiUrlOf,
  backoffDelay,
  createClient,
  tokenExpiry
};
