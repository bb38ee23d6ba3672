/** Sign-in: the console's config, the token check (`GET /v1/tenants`) and the caller. */
import { ApiError, createApi, type Api } from "./api.ts";

/** `GET /console/config.json`. */
export interface ConsoleConfig {
  deployment: "serve" | "aws";
  websocketUrl: string | null;
  devToken: boolean;
  /** serve: the WebSocket stage (the path of `ws(s)://<host>/<stage>`). */
  stage?: string;
}

export interface Caller {
  tenant: string;
  user: string;
  globalAdmin: boolean;
}

export interface TenantCount {
  tenant: string;
  connections: number;
  users: number;
  complete: boolean;
}

/** `GET /v1/tenants`. */
export interface TenantsAnswer {
  caller: Caller;
  tenants: TenantCount[];
  listed: "all" | "configured";
  truncated?: boolean;
}

export interface Session {
  token: string;
  caller: Caller;
  /** The first `GET /v1/tenants` answer (what the deployment knows of its tenants). */
  first: TenantsAnswer;
  api: Api;
}

/** The `data-testid="signed-in"` text: `console@ops · global admin`, `alice@acme · admin of acme`. */
export function callerText(caller: Caller): string {
  const scope = caller.globalAdmin ? "global admin" : `admin of ${caller.tenant}`;
  return `${caller.user}@${caller.tenant} · ${scope}`;
}

/** Why a token was refused at sign-in, for the alert. */
export function refusal(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 403) return `This is not an admin token: ${error.message}`;
    if (error.status === 401) return `The token was refused: ${error.message}`;
    return `Could not check the token: ${error.message}`;
  }
  return `Could not check the token: ${String(error)}`;
}

/**
 * Checks `token` with `GET /v1/tenants` (admins only): the session, or an error whose
 * `refusal` text the sign-in screen shows. `onUnauthorized` is for later calls.
 */
export async function signIn(
  token: string,
  onUnauthorized: (message: string) => void,
  fetchImpl?: typeof fetch,
): Promise<Session> {
  const checking = createApi(fetchImpl ? { token, fetch: fetchImpl } : { token });
  const first = await checking<TenantsAnswer>("GET", "/v1/tenants");
  const api = createApi(
    fetchImpl ? { token, onUnauthorized, fetch: fetchImpl } : { token, onUnauthorized },
  );
  return { token, caller: first.caller, first, api };
}

/** The WebSocket URL: the config's, else `ws(s)://<this host>/<stage>` (serve). */
export function websocketUrl(config: ConsoleConfig, location: { protocol: string; host: string }): string {
  if (config.websocketUrl) return config.websocketUrl;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/${config.stage ?? "main"}`;
}

/** Counts as shown: `10000+` for connections when the count stopped, `n+` for its users. */
export function countText(value: number, complete: boolean): string {
  return complete ? String(value) : `${value}+`;
}
