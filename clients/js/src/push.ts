/**
 * Web Push (docs/design.md: Web Push): `client.push.subscribe(registration)` makes the
 * browser's `PushSubscription` for this server's VAPID key and registers it as a device of
 * the signed-in user over the socket; messages with a `push` object then reach the user's
 * devices while the user has no live connection (a service worker shows them: see
 * `examples/service-worker.js`).
 *
 * - The VAPID public key: `options.vapidPublicKey`, else `GET <apiUrl>/v1/push/vapid-public-key`
 *   (`{"publicKey"}`; a 404 means push is off on that server: `PushError` `not_configured`).
 * - `PushManager.getSubscription()` first: a subscription made for the same key is reused (the
 *   same endpoint is the same device on the server, so registering it again only renews it);
 *   one made for another key is unsubscribed first (the browser refuses a second key).
 * - `{"action":"push_subscribe","subscription":<toJSON()>}` → `{"type":"push_subscribed","id"}`;
 *   `unsubscribe()`: `{"action":"push_unsubscribe","id"}` → `{"type":"push_unsubscribed"}`, then
 *   `PushSubscription.unsubscribe()`. An error frame rejects with its code; no answer within
 *   the client's `timeoutMs` rejects with `timeout`.
 */
import { decodeBase64Url } from "./jwt.js";

/**
 * Why a push call failed: `unsupported` (no `PushManager`), `not_configured` (the server
 * has no VAPID keys), `key_unavailable` (the key could not be fetched), `timeout`,
 * `connection_lost`, `closed`, or the code of the server's error frame: `bad_request` (the
 * message names the field), `push_unavailable` (push off), `devices_unavailable` (retry
 * later), `unknown_action` (a server without push).
 */
export class PushError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "PushError";
  }
}

/** The part of a browser `PushSubscription` used here. */
export interface PushSubscriptionLike {
  readonly options?: { readonly applicationServerKey: ArrayBuffer | null };
  toJSON(): unknown;
  unsubscribe(): Promise<boolean>;
}

/** The part of a browser `PushManager` used here. */
export interface PushManagerLike {
  getSubscription(): Promise<PushSubscriptionLike | null>;
  // An ArrayBuffer, not a Uint8Array: the DOM's BufferSource takes it in every TypeScript version.
  subscribe(options: { userVisibleOnly: boolean; applicationServerKey: ArrayBuffer }): Promise<PushSubscriptionLike>;
}

/** A service worker registration (`await navigator.serviceWorker.ready`), or a fake. */
export interface PushRegistration {
  readonly pushManager?: PushManagerLike;
}

export interface PushSubscribeOptions {
  /** The server's VAPID public key (base64url); fetched from `apiUrl` when absent. */
  vapidPublicKey?: string;
  /** The HTTP API's base URL for this call (default: the client's `apiUrl`). */
  apiUrl?: string;
}

export interface PushClient {
  /**
   * Subscribes the browser (asking for notification permission if needed) and registers
   * the subscription as a device of this user; resolves to the device id.
   */
  subscribe(registration: PushRegistration, options?: PushSubscribeOptions): Promise<string>;
  /**
   * Removes the device registered by `subscribe` on the server, then unsubscribes the
   * browser (always, even when the server could not be told: its next push is answered
   * 410 and the server drops the device then; the server's error is thrown after). With
   * no device registered by this client, unsubscribes `registration`'s subscription only.
   * Resolves to whether a subscription was ended.
   */
  unsubscribe(registration?: PushRegistration): Promise<boolean>;
}

/** What the push helpers need from the client. */
export interface PushDeps {
  /** Sends `frame` on the open socket; resolves with the `answer` frame. */
  call(frame: object, answer: string): Promise<Record<string, unknown>>;
  /** The HTTP API's base URL (read when needed: a bad `url` fails the call, not the client). */
  apiUrl(): string;
  fetch: typeof fetch | undefined;
  timeoutMs: number;
}

/** The HTTP API beside a WebSocket URL on one host (`serve`): `ws:` → `http:`, `wss:` → `https:`. */
export function apiUrlOf(socketUrl: string): string {
  const url = new URL(socketUrl);
  return `${url.protocol === "wss:" ? "https:" : "http:"}//${url.host}`;
}

function keyBytes(key: string): Uint8Array<ArrayBuffer> {
  let binary: string;
  try {
    binary = decodeBase64Url(key);
  } catch {
    binary = "";
  }
  // An uncompressed P-256 point: 0x04, x, y.
  if (binary.length !== 65 || binary.charCodeAt(0) !== 4) {
    throw new PushError("key_unavailable", "the VAPID public key is not a base64url uncompressed P-256 point");
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function sameKey(key: ArrayBuffer | null | undefined, bytes: Uint8Array): boolean {
  if (!key || key.byteLength !== bytes.length) return false;
  const other = new Uint8Array(key);
  return bytes.every((b, i) => b === other[i]);
}

export function createPush(deps: PushDeps): PushClient {
  let registered: { id: string; subscription: PushSubscriptionLike } | undefined;

  async function fetchKey(apiUrl: string): Promise<string> {
    const fetcher = deps.fetch ?? globalThis.fetch;
    if (!fetcher) throw new PushError("key_unavailable", "no fetch: pass options.vapidPublicKey or the client's fetch");
    const url = `${apiUrl.replace(/\/+$/, "")}/v1/push/vapid-public-key`;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), deps.timeoutMs);
    try {
      const res = await fetcher(url, { signal: abort.signal });
      if (res.status === 404) throw new PushError("not_configured", `Web Push is not configured on this server (404 from ${url})`);
      if (!res.ok) throw new PushError("key_unavailable", `${url} answered ${res.status}`);
      const body = (await res.json()) as { publicKey?: unknown };
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

  function manager(registration: PushRegistration | undefined): PushManagerLike {
    const found = registration?.pushManager;
    if (!found) throw new PushError("unsupported", "this browser has no PushManager (Web Push)");
    return found;
  }

  return {
    async subscribe(registration, options = {}) {
      const pushManager = manager(registration);
      const key = keyBytes(options.vapidPublicKey ?? (await fetchKey(options.apiUrl ?? deps.apiUrl())));
      let subscription = await pushManager.getSubscription();
      if (subscription && !sameKey(subscription.options?.applicationServerKey, key)) {
        await subscription.unsubscribe();
        subscription = null;
      }
      subscription ??= await pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key.buffer });
      const answer = await deps.call({ action: "push_subscribe", subscription: subscription.toJSON() }, "push_subscribed");
      if (typeof answer.id !== "string") throw new PushError("invalid_answer", "push_subscribed carried no id");
      registered = { id: answer.id, subscription };
      return answer.id;
    },

    async unsubscribe(registration) {
      const mine = registered;
      registered = undefined;
      let failure: unknown;
      if (mine) {
        try {
          await deps.call({ action: "push_unsubscribe", id: mine.id }, "push_unsubscribed");
        } catch (error) {
          // unknown_device: already gone (pruned after a 410, or replaced as the oldest).
          if (!(error instanceof PushError && error.code === "unknown_device")) failure = error;
        }
      }
      const subscription = mine?.subscription ?? (registration ? await manager(registration).getSubscription() : null);
      const ended = subscription ? await subscription.unsubscribe() : false;
      if (failure !== undefined) throw failure;
      return ended;
    },
  };
}
