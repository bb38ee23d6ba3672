// The WebSocket stage throttle sized from the connections a deployment expects
// (infra/README.md: Sizing), and the API Gateway quotas it must fit.
//
// An always-on client costs the stage, per second: one keep-alive `ping` every
// PING_INTERVAL_SECS (API Gateway closes a connection after 10 idle minutes; the client pings
// every 9, one minute of margin), one reconnect every CONNECTION_MAX_SECS (API Gateway ends
// every connection after 2 hours) counted FLAP_FACTOR times for network flaps, and
// ACTIONS_PER_HOUR other actions (whoami, resume, refresh, push_subscribe). The stage throttle
// is that need × HEADROOM, never below DEFAULT_WEBSOCKET_RATE_LIMIT (the stage's rate before
// sizing existed, so a small deployment keeps its room for reconnect storms).
//
// Quotas
// (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html):
// 10 idle minutes, 2 h per connection, 500 new connections per second per account and Region.

/** The client's keep-alive period: a `ping` every 9 minutes (API Gateway's idle limit is 10). */
export const PING_INTERVAL_SECS = 540;
/** API Gateway ends every WebSocket connection after 2 hours: one reconnect per connection this often. */
export const CONNECTION_MAX_SECS = 7200;
/** Reconnects are counted this many times over: networks flap, tabs sleep and wake. */
export const FLAP_FACTOR = 2;
/** Client actions other than `ping` per connection and hour (whoami, resume, refresh, push_subscribe). */
export const ACTIONS_PER_HOUR = 1;
/** Margin over the computed need, for the rate and for the new-connections check. */
export const HEADROOM = 1.5;
/** The stage's rate floor (and former fixed default) in requests per second; burst is twice the rate. */
export const DEFAULT_WEBSOCKET_RATE_LIMIT = 1000;
/** The default of `expectedConnections`. */
export const DEFAULT_EXPECTED_CONNECTIONS = 10_000;
/** API Gateway's default quota of new WebSocket connections per second, per account and Region. */
export const DEFAULT_NEW_CONNECTIONS_PER_SECOND = 500;

/** Requests per second one always-on connection sends the stage: pings + reconnects + actions. */
export const REQUESTS_PER_CONNECTION_PER_SECOND = 1 / PING_INTERVAL_SECS + FLAP_FACTOR / CONNECTION_MAX_SECS + ACTIONS_PER_HOUR / 3600;

/** What `expectedConnections` asks of the stage and of the new-connections quota. */
export interface Sizing {
  readonly expectedConnections: number;
  /** Requests per second the connections send, without headroom (rounded up). */
  readonly needPerSecond: number;
  /** The derived stage rate: max(floor, ceil(need × headroom)). */
  readonly derivedRateLimit: number;
  /** `$connect`s per second, with flaps and headroom (rounded up). */
  readonly connectsPerSecond: number;
}

export function sizingFor(expectedConnections: number): Sizing {
  const need = expectedConnections * REQUESTS_PER_CONNECTION_PER_SECOND;
  return {
    expectedConnections,
    needPerSecond: Math.ceil(need),
    derivedRateLimit: Math.max(DEFAULT_WEBSOCKET_RATE_LIMIT, Math.ceil(need * HEADROOM)),
    connectsPerSecond: Math.ceil((expectedConnections / CONNECTION_MAX_SECS) * FLAP_FACTOR * HEADROOM),
  };
}

/** The stage throttle in force and the sizing it came from. */
export interface WebSocketSizing {
  readonly sizing: Sizing;
  readonly rateLimit: number;
  readonly burstLimit: number;
  readonly newConnectionsPerSecond: number;
}

/**
 * The WebSocket stage throttle from the context: `expectedConnections` (default 10,000) sizes it;
 * an explicit `webSocketRateLimit` / `webSocketBurstLimit` wins, but a rate below the
 * connections' need, or reconnects above `newConnectionsPerSecond`, stop synthesis naming the
 * numbers. `int` reads an integer context value within bounds (config.ts).
 */
export function webSocketSizingFromContext(
  int: (key: string, dflt: number, min: number, max: number) => number,
): WebSocketSizing {
  const sizing = sizingFor(int('expectedConnections', DEFAULT_EXPECTED_CONNECTIONS, 1, 100_000_000));
  const newConnectionsPerSecond = int('newConnectionsPerSecond', DEFAULT_NEW_CONNECTIONS_PER_SECOND, 1, 1_000_000);
  if (sizing.connectsPerSecond > newConnectionsPerSecond) {
    throw new Error(
      `context expectedConnections (${sizing.expectedConnections}) reconnects ${sizing.connectsPerSecond}/s ` +
        `(one per connection every ${CONNECTION_MAX_SECS} s, ×${FLAP_FACTOR} for flaps, ×${HEADROOM} headroom), above the account's ` +
        `new-connections quota newConnectionsPerSecond = ${newConnectionsPerSecond}/s: raise the quota with AWS and set newConnectionsPerSecond, or split the connections across Regions or accounts`,
    );
  }
  const rateLimit = int('webSocketRateLimit', sizing.derivedRateLimit, 1, 1_000_000);
  if (rateLimit < sizing.needPerSecond) {
    throw new Error(
      `context webSocketRateLimit (${rateLimit}/s) is below what expectedConnections (${sizing.expectedConnections}) need: ` +
        `${sizing.needPerSecond}/s of pings, reconnects and actions (derived throttle ${sizing.derivedRateLimit}/s); raise it or leave it unset`,
    );
  }
  const burstLimit = int('webSocketBurstLimit', 2 * rateLimit, 1, 2_000_000);
  return { sizing, rateLimit, burstLimit, newConnectionsPerSecond };
}
