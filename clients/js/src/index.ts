/**
 * `switchboard-client`: a WebSocket client for Switchboard that reconnects, keeps the
 * socket alive, renews its token, resumes from the last cursor and hands out each message
 * id once; `client.push` registers the browser for Web Push. ESM, no runtime dependencies;
 * browsers and Node (pass a `WebSocket`).
 */
export {
  createClient,
  BASE_BACKOFF_MS,
  MAX_URL_CHARS,
  OVERLAP_MS,
  REFRESH_BEFORE_MS,
  STABLE_MS,
} from "./client.js";
export type {
  Client,
  ClientEvents,
  ClientMessage,
  ClientOptions,
  ClientState,
  SocketLike,
  WebSocketConstructor,
} from "./client.js";
export { apiUrlOf, PushError } from "./push.js";
export type {
  PushClient,
  PushManagerLike,
  PushRegistration,
  PushSubscribeOptions,
  PushSubscriptionLike,
} from "./push.js";
export { backoffDelay } from "./backoff.js";
export { RecentIds } from "./dedupe.js";
export { tokenExpiry } from "./jwt.js";
