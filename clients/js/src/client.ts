/**
 * The Switchboard client: one logical subscription over a sequence of WebSockets.
 *
 * - Connects with a fresh token from `token()` every time (docs/design.md: Identity: `bearer, <jwt>`
 *   subprotocol by default, or `?token=`; a token that would make the URL longer than
 *   `MAX_URL_CHARS`, API Gateway's limit, goes in the subprotocol instead). A failed
 *   handshake (a 401 shows as a plain failure in browsers), a 4001 close (token expired) or
 *   any other loss leads to a new token and a new socket after a backoff with full jitter;
 *   the backoff resets once a socket has stayed open `STABLE_MS`.
 * - Keep-alive: a `ping` every `keepAliveMs` (9 minutes: API Gateway closes a socket after 10
 *   idle minutes, and only client traffic is relied on to reset that; browsers cannot send
 *   WebSocket control pings); no answer (any frame) within `timeoutMs` counts as a lost socket.
 * - Planned reconnect: after `lifetimeMs` (before the 2-hour cap), or when the token must be
 *   renewed and the server has no in-band `refresh`, a new socket is opened first; the old
 *   one is closed `OVERLAP_MS` after the new one is open, so nothing is in flight on neither.
 * - Resume (docs/design.md: History and resume): every new socket asks for what came after the newest cursor seen;
 *   frames are held until the `resumed` answer and handed out in cursor order. `complete:
 *   false` or a rejected cursor emits `gap`. A server without history answers
 *   `unknown_action`: no gap, and nothing is retried.
 * - Refresh (docs/design.md: Token expiry and refresh): before the token's `exp`, `{"action":"refresh"}` with a new
 *   token; any error or no answer falls back to a planned reconnect (after `unknown_action` or
 *   `refresh_unavailable`, every later renewal too).
 * - Dedupe: a message id is handed out at most once within the last `dedupeWindow` ids.
 * - Browsers: the `online` event ends a backoff wait at once.
 * - Requests over the socket (`client.push`, src/push.ts) go out on the open socket (or the
 *   next one to open) and wait for their answer frame, an error frame or `timeoutMs`.
 * - `close()` ends everything: no timers, no sockets, no events after it.
 */
import { backoffDelay } from "./backoff.js";
import { RecentIds } from "./dedupe.js";
import { tokenExpiry } from "./jwt.js";
import { apiUrlOf, createPush, PushError, type PushClient } from "./push.js";

/** `connecting` (first attempt), `open`, `reconnecting` (lost; retrying), `closed` (by `close()`). */
export type ClientState = "connecting" | "open" | "reconnecting" | "closed";

/** A delivered message: `cursor` is present when the server recorded it in history. */
export interface ClientMessage {
  id: string;
  data: unknown;
  cursor?: string;
}

export interface ClientEvents {
  message: (message: ClientMessage) => void;
  state: (state: ClientState) => void;
  /** A resume could not return everything missed: reload your state. */
  gap: () => void;
}

// Handlers typed as methods are checked bivariantly, so the DOM's `WebSocket` and the `ws`
// package's both fit.
type Handler<E> = { bivarianceHack(event: E): void }["bivarianceHack"];

/** The part of the WebSocket API the client uses (browsers' `WebSocket`, `ws`, fakes). */
export interface SocketLike {
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number }> | null;
  onerror: Handler<unknown> | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => SocketLike;

export interface ClientOptions {
  /** `wss://…/main` or `ws://127.0.0.1:8080/main`. */
  url: string;
  /** A valid JWT; called before every (re)connect and before the current one expires. */
  token: () => string | Promise<string>;
  /**
   * How the token travels: `Sec-WebSocket-Protocol: bearer, <jwt>` (default) or `?token=`.
   * With `query`, a connect whose URL would exceed `MAX_URL_CHARS` uses the subprotocol.
   */
  transport?: "subprotocol" | "query";
  /** Told about choices worth knowing when debugging (e.g. a token too long for the URL). */
  debug?: (message: string) => void;
  /** A WebSocket constructor; default `globalThis.WebSocket` (Node 20 has none: use `ws`). */
  WebSocket?: WebSocketConstructor;
  /**
   * Interval of keep-alive pings (default 540,000 ms, 9 minutes: API Gateway closes a socket
   * after 10 idle minutes; a minute of margin). Each ping and its pong is a billed message.
   */
  keepAliveMs?: number;
  /** Cap of the reconnect backoff (default 30,000 ms). */
  maxBackoffMs?: number;
  /** Planned reconnect after this long on one socket (default 1 h 55 min; the cap is 2 h). */
  lifetimeMs?: number;
  /** Longest wait for a token, a handshake or an answer (default 10,000 ms). */
  timeoutMs?: number;
  /** How many recent ids are remembered for dedupe (default 1,000). */
  dedupeWindow?: number;
  /** Resume from this cursor on the first connection (e.g. `client.cursor` saved earlier). */
  since?: string;
  /**
   * The HTTP API's base URL (`client.push` reads the VAPID key there). Default: `url`'s host
   * with `http:`/`https:` (as `serve` answers both); on AWS the HTTP API's own endpoint.
   */
  apiUrl?: string;
  /** A `fetch`; default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

export interface Client {
  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): () => void;
  close(): void;
  readonly state: ClientState;
  /** The newest cursor delivered so far. */
  readonly cursor: string | undefined;
  /** Web Push: register this browser as a device of the user (src/push.ts). */
  readonly push: PushClient;
}

/**
 * Longest WebSocket URL, in characters, API Gateway accepts ("Length, in characters, of the
 * URL for a WebSocket API": 4096, not adjustable;
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html).
 * Counted over the whole URL the socket is opened with (scheme, host, path, query).
 */
export const MAX_URL_CHARS = 4096;
/** First backoff window; attempt n waits up to BASE_BACKOFF_MS * 2^n (capped). */
export const BASE_BACKOFF_MS = 500;
/** A socket open this long resets the backoff. */
export const STABLE_MS = 10_000;
/** After a planned reconnect, the old socket stays open this long beside the new one. */
export const OVERLAP_MS = 1_000;
/** Frames held while a resume is answered; beyond this they are handed out unsorted. */
export const RESUME_BUFFER_LIMIT = 10_000;
/** The token is renewed this long before its `exp` (or at half its remaining life if shorter). */
export const REFRESH_BEFORE_MS = 60_000;

type Timer = ReturnType<typeof setTimeout>;
type Request = "resume" | "refresh" | Call;

/** A request sent for someone else (`client.push`): settled by `answer`, an error or a timeout. */
interface Call {
  frame: object;
  answer: string;
  conn: Conn | undefined;
  timer: Timer | undefined;
  resolve(frame: Record<string, unknown>): void;
  reject(error: PushError): void;
}

interface Conn {
  ws: SocketLike;
  token: string;
  open: boolean;
  gone: boolean;
  openedAt: number;
  timers: Map<string, Timer>;
  /** Requests awaiting an answer, oldest first (errors carry no request id). */
  waiting: Request[];
  /** Messages held while a resume is answered. */
  held: ClientMessage[] | undefined;
  /** The token sent in a `refresh` awaiting its answer. */
  renewal: string | undefined;
}

const noop = (): void => {};

export function createClient(options: ClientOptions): Client {
  const found = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!found) {
    throw new TypeError("no WebSocket constructor: pass options.WebSocket (e.g. from the ws package)");
  }
  const WS: WebSocketConstructor = found;
  const keepAliveMs = options.keepAliveMs ?? 540_000;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const lifetimeMs = options.lifetimeMs ?? 6_900_000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const recent = new RecentIds(options.dedupeWindow ?? 1_000);
  const listeners: { [K in keyof ClientEvents]: Set<ClientEvents[K]> } = {
    message: new Set(),
    state: new Set(),
    gap: new Set(),
  };
  const live = new Set<Conn>();
  const calls = new Set<Call>();

  let state: ClientState | undefined;
  let cursor = options.since;
  let current: Conn | undefined; // the socket that is read and kept alive
  let switching = false; // a planned replacement is being opened
  let attempt = 0;
  let retryTimer: Timer | undefined;
  let refreshSupported = true;
  let closed = false;

  function emit<K extends keyof ClientEvents>(event: K, ...args: Parameters<ClientEvents[K]>): void {
    for (const listener of [...listeners[event]]) {
      try {
        (listener as (...a: Parameters<ClientEvents[K]>) => void)(...args);
      } catch (error) {
        // A listener's bug must not break reconnects; report it as an uncaught error.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  function setState(next: ClientState): void {
    if (next !== state) {
      state = next;
      emit("state", next);
    }
  }

  function after(conn: Conn, name: string, ms: number, fn: () => void): void {
    cancel(conn, name);
    conn.timers.set(
      name,
      setTimeout(() => {
        conn.timers.delete(name);
        fn();
      }, ms),
    );
  }

  function cancel(conn: Conn, name: string): void {
    clearTimeout(conn.timers.get(name));
    conn.timers.delete(name);
  }

  function cancelAll(conn: Conn): void {
    conn.timers.forEach(clearTimeout);
    conn.timers.clear();
  }

  function fetchToken(): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("token() timed out")), timeoutMs);
      new Promise<string>((r) => r(options.token())).then(
        (token) => {
          clearTimeout(timer);
          if (typeof token === "string" && token !== "") resolve(token);
          else reject(new TypeError("token() gave no token"));
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  function send(conn: Conn, frame: object): void {
    try {
      conn.ws.send(JSON.stringify(frame));
    } catch {
      // A socket that cannot send is closing; its close event follows.
    }
  }

  function deliver(message: ClientMessage): void {
    if (closed || !recent.add(message.id)) return;
    if (message.cursor !== undefined && (cursor === undefined || message.cursor > cursor)) {
      cursor = message.cursor;
    }
    emit("message", message);
  }

  /** Hands out held messages, those with a cursor in cursor order (in their own slots). */
  function release(conn: Conn): void {
    const held = conn.held;
    conn.held = undefined;
    cancel(conn, "resume");
    if (!held) return;
    const sorted = held
      .filter((m) => m.cursor !== undefined)
      .sort((a, b) => ((a.cursor as string) < (b.cursor as string) ? -1 : a.cursor === b.cursor ? 0 : 1));
    let next = 0;
    for (const message of held) deliver(message.cursor === undefined ? message : (sorted[next++] as ClientMessage));
  }

  function retry(): void {
    clearTimeout(retryTimer);
    const delay = backoffDelay(attempt++, BASE_BACKOFF_MS, maxBackoffMs);
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (current) replace();
      else void connect(false);
    }, delay);
  }

  /** Opens a socket beside the current one, which is closed once the new one is open. */
  function replace(token?: string): void {
    if (closed || switching || !current) return;
    switching = true;
    void connect(true, token);
  }

  async function connect(planned: boolean, token?: string): Promise<void> {
    let conn: Conn;
    try {
      const jwt = token ?? (await fetchToken());
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
        timers: new Map(),
        waiting: [],
        held: undefined,
        renewal: undefined,
      };
    } catch {
      // No token, or the constructor refused the URL: try again later.
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
    conn.ws.onerror = noop; // a close event follows
    after(conn, "open", timeoutMs, () => lost(conn));
  }

  function opened(conn: Conn): void {
    cancel(conn, "open");
    conn.open = true;
    conn.openedAt = Date.now();
    const old = current !== conn ? current : undefined;
    switching = false;
    current = conn;
    if (old) {
      // Keep reading the old socket a little longer: frames already on their way to it.
      cancelAll(old);
      release(old);
      after(old, "retire", OVERLAP_MS, () => {
        old.ws.close(1000, "replaced");
        lost(old);
      });
    }
    setState("open");
    for (const call of calls) if (!call.conn) dispatch(conn, call);
    keepAlive(conn);
    after(conn, "lifetime", lifetimeMs, () => replace());
    scheduleRefresh(conn, tokenExpiry(conn.token));
    if (cursor !== undefined) {
      conn.held = [];
      conn.waiting.push("resume");
      send(conn, { action: "resume", since: cursor });
      after(conn, "resume", timeoutMs, () => {
        conn.waiting = conn.waiting.filter((r) => r !== "resume");
        release(conn);
      });
    }
  }

  function keepAlive(conn: Conn): void {
    after(conn, "ping", keepAliveMs, () => {
      send(conn, { action: "ping" });
      if (!conn.timers.has("pong")) after(conn, "pong", timeoutMs, () => lost(conn));
      keepAlive(conn);
    });
  }

  function scheduleRefresh(conn: Conn, exp: number | undefined): void {
    if (exp === undefined) return;
    const remaining = exp * 1000 - Date.now();
    const delay = Math.max(0, remaining - Math.min(REFRESH_BEFORE_MS, remaining / 2));
    // A socket replaced before then gets its own token anyway.
    if (delay < lifetimeMs) after(conn, "refresh", delay, () => void refresh(conn));
  }

  async function refresh(conn: Conn): Promise<void> {
    let token: string | undefined;
    try {
      token = await fetchToken();
    } catch {
      token = undefined;
    }
    if (closed || conn !== current) return;
    // No token, or one that expires no later than the current one: ask again a little later
    // (at the token's expiry the server closes with 4001 and the reconnect gets a new one).
    if (token === undefined || (tokenExpiry(token) ?? Infinity) <= (tokenExpiry(conn.token) ?? Infinity)) {
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

  function call(frame: object, answer: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      if (closed) {
        reject(new PushError("closed", "the client is closed"));
        return;
      }
      const pending: Call = { frame, answer, conn: undefined, timer: undefined, resolve, reject };
      pending.timer = setTimeout(() => {
        finish(pending, new PushError("timeout", `no ${answer} within ${timeoutMs} ms`));
      }, timeoutMs);
      calls.add(pending);
      if (current?.open) dispatch(current, pending);
    });
  }

  function dispatch(conn: Conn, pending: Call): void {
    pending.conn = conn;
    conn.waiting.push(pending);
    send(conn, pending.frame);
  }

  /** Settles `pending` with `outcome` (an error or the answer frame). */
  function finish(pending: Call, outcome: PushError | Record<string, unknown>): void {
    if (!calls.delete(pending)) return;
    clearTimeout(pending.timer);
    if (pending.conn) take(pending.conn, pending);
    if (outcome instanceof PushError) pending.reject(outcome);
    else pending.resolve(outcome);
  }

  function take(conn: Conn, request: Request): boolean {
    const index = conn.waiting.indexOf(request);
    if (index >= 0) conn.waiting.splice(index, 1);
    return index >= 0;
  }

  function received(conn: Conn, raw: unknown): void {
    if (typeof raw !== "string") return;
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    cancel(conn, "pong"); // any frame shows the socket is alive
    if (typeof frame.type === "string") {
      answered(conn, frame);
      return;
    }
    if (typeof frame.id !== "string" || !("data" in frame)) return;
    const message: ClientMessage = { id: frame.id, data: frame.data };
    if (typeof frame.cursor === "string") message.cursor = frame.cursor;
    if (!conn.held) deliver(message);
    else if (conn.held.push(message) >= RESUME_BUFFER_LIMIT) release(conn);
  }

  function answered(conn: Conn, frame: Record<string, unknown>): void {
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
      const pending = conn.waiting.find((r): r is Call => typeof r === "object" && r.answer === frame.type);
      if (pending) finish(pending, frame);
    } else {
      const request = frame.error === "invalid_cursor" ? (take(conn, "resume") ? "resume" : undefined) : conn.waiting.shift();
      if (request === "resume") {
        // unknown_action: the server keeps no history. Anything else: the cursor is unusable.
        if (frame.error !== "unknown_action") {
          cursor = undefined;
          emit("gap");
        }
        release(conn);
      } else if (request === "refresh") {
        cancel(conn, "refreshed");
        // No in-band refresh on this server (or this edge cannot verify tokens).
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

  function lost(conn: Conn): void {
    if (conn.gone) return;
    conn.gone = true;
    live.delete(conn);
    cancelAll(conn);
    const ws = conn.ws;
    ws.onopen = ws.onmessage = ws.onclose = noop;
    try {
      ws.close(1000);
    } catch {
      // already closed
    }
    release(conn);
    for (const pending of calls) {
      if (pending.conn === conn) finish(pending, new PushError("connection_lost", "the socket closed before the answer"));
    }
    if (closed) return;
    if (conn.open && Date.now() - conn.openedAt >= STABLE_MS) attempt = 0;
    if (conn === current) {
      current = undefined;
      setState("reconnecting");
      // A planned replacement on its way becomes the connection when it opens.
      if (!switching) retry();
    } else if (!conn.open) {
      // A planned replacement that never opened (the current socket, if any, stays).
      switching = false;
      retry();
    }
  }

  // Browsers: when the network comes back, try at once instead of waiting out the backoff.
  const events = globalThis as {
    addEventListener?: (type: string, listener: () => void) => void;
    removeEventListener?: (type: string, listener: () => void) => void;
  };
  const online = (): void => {
    if (closed || current || retryTimer === undefined) return;
    clearTimeout(retryTimer);
    retryTimer = undefined;
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
      current = undefined;
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
      timeoutMs,
    }),
  };
}
