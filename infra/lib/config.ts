// How the CDK app is configured: every knob is a CDK context value (`-c key=value` or
// cdk.json), parsed once here into a typed struct, so the stack never reads context itself
// and tests can build the props directly.
//
// The identity settings chosen at deploy time (JWKS URL, issuer, audience, claim names,
// log filter) are CloudFormation parameters instead — see SwitchboardStack — and the
// context only provides their defaults.

import * as path from 'path';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Node } from 'constructs';
import { EventsSettings, eventsFromContext } from './events';
import { PushSettings, pushFromContext } from './push';
import { Sizing, webSocketSizingFromContext } from './sizing';
import { badTenantId } from './tenants';

/** The seven Rust binaries of `services/lambdas`, as `cargo lambda build` names their folders. */
export const FUNCTION_NAMES = ['authorizer', 'connect', 'disconnect', 'default', 'publisher', 'publish-api', 'events'] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

export interface SwitchboardConfig {
  /**
   * Folder holding `<name>/bootstrap.zip` for each function, as written by
   * `cargo lambda build --profile lambda-release --output-format zip` (default `<repo>/target/lambda`).
   */
  readonly lambdaDir: string;
  /** `x86_64` (default) or `arm64`; the zips must be built for it (`cargo lambda build --arm64`). */
  readonly architecture: lambda.Architecture;
  /** Physical roster table name; unset lets CloudFormation name it (it reaches the functions as ROSTER_TABLE). */
  readonly rosterTableName?: string;
  /**
   * Physical history table name (docs/design.md: History and resume); unset lets CloudFormation name it (it reaches
   * the publisher and `default` as HISTORY_TABLE).
   */
  readonly historyTableName?: string;
  /**
   * HISTORY_TTL_SECS for the publisher and `default`
   * (docs/design.md: History and resume, default 300; 0 turns history off).
   */
  readonly historyTtlSecs: number;
  /**
   * RECEIPT_TTL_SECS for the publisher and publish-api (docs/design.md: Receipts, default 86400; 0 turns receipts and
   * idempotent publish off). Receipts live in the history table.
   */
  readonly receiptTtlSecs: number;
  /**
   * USAGE_RETENTION_DAYS for the publisher, publish-api, connect and disconnect (docs/design.md: Usage, default 35):
   * how long the per-tenant minute buckets are kept (their TTL) and the longest range one usage request reads. Usage
   * lives in the history table.
   */
  readonly usageRetentionDays: number;
  /**
   * RESUME_MAX for `default`: messages one `resume` sends at most
   * (docs/design.md: History and resume, default 500).
   */
  readonly resumeMax: number;
  /**
   * Timeout of the `default` function in seconds (default and at most 28): API Gateway stops
   * waiting for a WebSocket integration after 29 s, a quota that cannot be raised
   * (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html),
   * so a longer-running `resume` would be cut off without its `resumed` answer.
   */
  readonly defaultTimeoutSecs: number;
  /** FANOUT_CONCURRENCY for the publisher (docs/design.md: Publisher, default 64). */
  readonly fanoutConcurrency: number;
  /** SCAN_SEGMENTS for the publisher's broadcast scan (docs/design.md: Roster, default 4). */
  readonly scanSegments: number;
  /** LEGACY_BROADCAST for the publisher (docs/design.md: Messages, default false). */
  readonly legacyBroadcast: boolean;
  /** CONNECTION_TTL_SECS for connect (docs/design.md: Configuration, default 7500 = 2 h 5 min). */
  readonly connectionTtlSecs: number;
  /** Publisher timeout in seconds; the queue's visibility timeout is 6× this (AWS guidance). */
  readonly publisherTimeoutSecs: number;
  /**
   * An existing SNS topic every alarm notifies instead of the stack's own topic (the
   * `AlarmTopicArn` output names whichever is used).
   */
  readonly alarmTopicArn?: string;
  /** An e-mail address subscribed to the stack's alarm topic (confirm the e-mail AWS sends). */
  readonly alarmEmail?: string;
  /**
   * Create API Gateway's account-wide CloudWatch Logs role (AWS::ApiGateway::Account), both
   * retained on stack deletion: the one-time step of a Region whose account has none (see
   * infra/README.md). Off by default: the setting is one per account and Region.
   */
  readonly createApiGatewayLogsRole: boolean;
  /**
   * Access logs on the WebSocket stage. They need the account's API Gateway CloudWatch Logs
   * role, so they are off by default and a first deploy works in a fresh account.
   */
  readonly webSocketAccessLogs: boolean;
  /**
   * X-Ray tracing of every function (infra/README.md: At scale): `active` (default; Lambda samples
   * 1 request/s + 5 % of the rest itself), `passthrough` (only requests arriving with a sampled
   * trace header), `off`.
   */
  readonly tracing: TracingMode;
  /** Deletion protection on the roster table (default on). */
  readonly tableDeletionProtection: boolean;
  /**
   * Stage-level throttling of the WebSocket API (every route, `$connect` included): derived from
   * `expectedConnections` (lib/sizing.ts) unless `webSocketRateLimit` / `webSocketBurstLimit` set it.
   */
  readonly webSocketThrottle: Throttle;
  /** What `expectedConnections` (default 10,000) asks of the stage (lib/sizing.ts). */
  readonly sizing: Sizing;
  /** The account's quota of new WebSocket connections per second in this Region (default 500). */
  readonly newConnectionsPerSecond: number;
  /** Stage-level throttling of the HTTP publish API. */
  readonly publishThrottle: Throttle;
  /**
   * PostToConnection calls per second all publishers together may make (`FANOUT_RATE` ×
   * `publisherMaxConcurrency` never exceeds it).
   */
  readonly postBudgetPerSecond: number;
  /** The SQS event source's `maxConcurrency`: publisher invocations at once (2–1000). */
  readonly publisherMaxConcurrency: number;
  /** The account's API Gateway request quota per second in this Region (default 10,000). */
  readonly accountRequestsPerSecond: number;
  /** FANOUT_SHARD_SIZE: connections per fan-out work item (docs/design.md: Fan-out at any size, default 1000). */
  readonly fanoutShardSize: number;
  /** GONE_GRACE_SECS: no roster delete on 410 for a younger connection (default 30). */
  readonly goneGraceSecs: number;
  /** CloudWatch namespace of the EMF metrics (default `Switchboard/<stack name>`). */
  readonly metricsNamespace?: string;
  /**
   * METRICS_TENANTS for the publisher and publish-api (docs/design.md: Usage): tenant ids
   * (at most {@link MAX_METRICS_TENANTS}) whose EMF documents add a `Tenant` dimension. Each
   * is billed as custom metrics of its own (infra/README.md: Metrics); empty by default.
   */
  readonly metricsTenants: readonly string[];
  /** Alarm when the queue's oldest message is older than this many seconds (default 300). */
  readonly queueAgeAlarmSecs: number;
  /**
   * A `JWT_ISSUERS_FILE` (docs/design.md: Identity per issuer), absolute path: shipped as a
   * layer to the functions that verify tokens, instead of the `JwtJwksUrl`, `JwtIssuer` and
   * `JwtAudience` parameters (exclusive with their context defaults).
   */
  readonly jwtIssuersFile?: string;
  /**
   * A `TENANTS_FILE` (docs/design.md: Tenants), absolute path: checked at synth (an unknown
   * key or a bad limit stops synthesis, naming it) and shipped as a layer to the functions
   * that enforce tenant settings (lib/tenants.ts). Unset: no tenant limits.
   */
  readonly tenantsFile?: string;
  /**
   * Web Push (docs/design.md: Web Push; lib/push.ts): on when `vapidPublicKey`, `vapidSubject`
   * and `vapidPrivateKeySecret` (a Secrets Manager secret) are set; undefined (push off) when
   * none is.
   */
  readonly push?: PushSettings;
  /**
   * Events (docs/design.md: Events; lib/events.ts): the `eventsOfflineDelaySecs`,
   * `eventsArchiveDays`, `eventsMaxConcurrency` and the optional webhook context.
   */
  readonly events: EventsSettings;
  /** Defaults of the CloudFormation parameters. */
  readonly parameterDefaults: {
    readonly jwtJwksUrl?: string;
    readonly jwtIssuer: string;
    readonly jwtAudience: string;
    readonly tenantClaim: string;
    readonly rolesClaim: string;
    readonly logLevel: string;
  };
}

/** `tracing` context: X-Ray on every function, Lambda's own sampling, only upstream-sampled requests, or none. */
export type TracingMode = 'active' | 'passthrough' | 'off';

/** Steady-state requests per second and burst of a stage. */
export interface Throttle {
  readonly rateLimit: number;
  readonly burstLimit: number;
}

/** `FANOUT_RATE`: one publisher process's share of the budget, floor(budget / maxConcurrency). */
export function fanoutRate(config: Pick<SwitchboardConfig, 'postBudgetPerSecond' | 'publisherMaxConcurrency'>): number {
  return Math.floor(config.postBudgetPerSecond / config.publisherMaxConcurrency);
}

/**
 * The longest `default` function timeout: one second under API Gateway's 29 s WebSocket
 * integration timeout (not adjustable; see `defaultTimeoutSecs`).
 */
export const DEFAULT_TIMEOUT_MAX_SECS = 28;

/** Most tenants `metricsTenants` may list (the Rust side's MAX_METRICS_TENANTS, services/lambdas/src/emf.rs). */
export const MAX_METRICS_TENANTS = 20;

/**
 * `metricsTenants`: a comma-separated list of tenant ids, blanks and repeats dropped, each
 * checked as TenantId::parse does and ASCII (a CloudWatch dimension value), at most
 * {@link MAX_METRICS_TENANTS}.
 */
function metricsTenants(raw: string | undefined): string[] {
  const list = [...new Set((raw ?? '').split(',').map((t) => t.trim()).filter((t) => t !== ''))];
  for (const id of list) {
    const bad = badTenantId(id);
    if (bad) throw new Error(`context metricsTenants: tenant id '${id}' ${bad}`);
    // CloudWatch dimension values are ASCII (the Rust side checks the same).
    if (!/^[\x00-\x7f]*$/.test(id)) throw new Error(`context metricsTenants: tenant id '${id}' must be ASCII (a CloudWatch dimension value)`);
  }
  if (list.length > MAX_METRICS_TENANTS) {
    throw new Error(
      `context metricsTenants: lists ${list.length} tenants; at most ${MAX_METRICS_TENANTS} (each is billed as custom metrics of its own)`,
    );
  }
  return list;
}

/** `<repo>/target/lambda`, resolved from this file so it does not depend on the cwd. */
export const DEFAULT_LAMBDA_DIR = path.resolve(__dirname, '..', '..', 'target', 'lambda');

function str(node: Node, key: string): string | undefined {
  const v = node.tryGetContext(key);
  if (v === undefined || v === null) return undefined;
  return String(v);
}

function int(node: Node, key: string, dflt: number, min: number, max: number): number {
  const raw = str(node, key);
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`context ${key}: expected an integer in [${min}, ${max}], got '${raw}'`);
  }
  return n;
}

function bool(node: Node, key: string, dflt: boolean): boolean {
  const raw = str(node, key);
  if (raw === undefined) return dflt;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new Error(`context ${key}: expected true or false, got '${raw}'`);
}

/** `tracing`: active, passthrough or off; `true` / `false` are kept as aliases of active / off. */
function tracingMode(raw: string | undefined): TracingMode {
  switch (raw ?? 'active') {
    case 'active':
    case 'true':
      return 'active';
    case 'passthrough':
      return 'passthrough';
    case 'off':
    case 'false':
      return 'off';
    default:
      throw new Error(`context tracing: expected active, passthrough or off (true / false: active / off), got '${raw}'`);
  }
}

function architecture(raw: string | undefined): lambda.Architecture {
  switch ((raw ?? 'x86_64').toLowerCase()) {
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      return lambda.Architecture.X86_64;
    case 'arm64':
    case 'aarch64':
      return lambda.Architecture.ARM_64;
    default:
      throw new Error(`context architecture: expected x86_64 or arm64, got '${raw}'`);
  }
}

/** Reads the app's context into a config; unknown or malformed values stop synthesis. */
export function configFromContext(node: Node): SwitchboardConfig {
  const lambdaDir = str(node, 'lambdaDir');
  const issuersFile = str(node, 'jwtIssuersFile') || undefined;
  const tenantsFile = str(node, 'tenantsFile') || undefined;
  if (issuersFile) {
    for (const single of ['jwtJwksUrl', 'jwtIssuer', 'jwtAudience']) {
      if (str(node, single)) {
        throw new Error(
          `context jwtIssuersFile and ${single} are exclusive: the issuers file gives each issuer its own keys and audience; set only one key source`,
        );
      }
    }
  }
  const config: SwitchboardConfig = {
    lambdaDir: lambdaDir ? path.resolve(lambdaDir) : DEFAULT_LAMBDA_DIR,
    architecture: architecture(str(node, 'architecture')),
    rosterTableName: str(node, 'rosterTableName') || undefined,
    historyTableName: str(node, 'historyTableName') || undefined,
    // The bounds are the Rust side's (services/core/src/history/config.rs).
    historyTtlSecs: int(node, 'historyTtlSecs', 300, 0, 86400),
    resumeMax: int(node, 'resumeMax', 500, 1, 10000),
    // The bounds are the Rust side's (services/core/src/receipts/config.rs).
    receiptTtlSecs: int(node, 'receiptTtlSecs', 86400, 0, 604800),
    // The bounds are the Rust side's (services/core/src/usage/config.rs).
    usageRetentionDays: int(node, 'usageRetentionDays', 35, 1, 400),
    defaultTimeoutSecs: int(node, 'defaultTimeoutSecs', DEFAULT_TIMEOUT_MAX_SECS, 3, DEFAULT_TIMEOUT_MAX_SECS),
    fanoutConcurrency: int(node, 'fanoutConcurrency', 64, 1, 1000),
    scanSegments: int(node, 'scanSegments', 4, 1, 1000),
    legacyBroadcast: bool(node, 'legacyBroadcast', false),
    connectionTtlSecs: int(node, 'connectionTtlSecs', 7500, 60, 86400),
    publisherTimeoutSecs: int(node, 'publisherTimeoutSecs', 60, 10, 900),
    alarmTopicArn: str(node, 'alarmTopicArn') || undefined,
    alarmEmail: str(node, 'alarmEmail') || undefined,
    createApiGatewayLogsRole: bool(node, 'createApiGatewayLogsRole', false),
    webSocketAccessLogs: bool(node, 'webSocketAccessLogs', false),
    tracing: tracingMode(str(node, 'tracing')),
    tableDeletionProtection: bool(node, 'tableDeletionProtection', true),
    ...webSocketStage((key, dflt, min, max) => int(node, key, dflt, min, max)),
    publishThrottle: {
      rateLimit: int(node, 'publishRateLimit', 500, 1, 100000),
      burstLimit: int(node, 'publishBurstLimit', 1000, 1, 100000),
    },
    postBudgetPerSecond: int(node, 'postBudgetPerSecond', 5000, 2, 100000),
    publisherMaxConcurrency: int(node, 'publisherMaxConcurrency', 10, 2, 1000),
    accountRequestsPerSecond: int(node, 'accountRequestsPerSecond', 10000, 1, 1000000),
    fanoutShardSize: int(node, 'fanoutShardSize', 1000, 1, 100000),
    goneGraceSecs: int(node, 'goneGraceSecs', 30, 0, 3600),
    metricsNamespace: str(node, 'metricsNamespace') || undefined,
    metricsTenants: metricsTenants(str(node, 'metricsTenants')),
    queueAgeAlarmSecs: int(node, 'queueAgeAlarmSecs', 300, 60, 86400),
    jwtIssuersFile: issuersFile ? path.resolve(issuersFile) : undefined,
    tenantsFile: tenantsFile ? path.resolve(tenantsFile) : undefined,
    push: pushFromContext(
      (key) => str(node, key),
      (key, dflt, min, max) => int(node, key, dflt, min, max),
    ),
    events: eventsFromContext(
      (key) => str(node, key),
      (key, dflt, min, max) => int(node, key, dflt, min, max),
    ),
    parameterDefaults: {
      jwtJwksUrl: str(node, 'jwtJwksUrl') || undefined,
      jwtIssuer: str(node, 'jwtIssuer') ?? '',
      jwtAudience: str(node, 'jwtAudience') ?? '',
      tenantClaim: str(node, 'tenantClaim') ?? 'tenant',
      rolesClaim: str(node, 'rolesClaim') ?? 'roles',
      logLevel: str(node, 'logLevel') ?? 'info',
    },
  };
  checkBudget(config);
  return config;
}

/** The WebSocket stage's throttle, its sizing and the new-connections quota (lib/sizing.ts). */
function webSocketStage(
  int: (key: string, dflt: number, min: number, max: number) => number,
): Pick<SwitchboardConfig, 'webSocketThrottle' | 'sizing' | 'newConnectionsPerSecond'> {
  const { sizing, rateLimit, burstLimit, newConnectionsPerSecond } = webSocketSizingFromContext(int);
  return { webSocketThrottle: { rateLimit, burstLimit }, sizing, newConnectionsPerSecond };
}

/**
 * The budget must leave every publisher at least one post per second, and the budget plus
 * both stages' rate limits must fit in the account's request quota (PostToConnection,
 * `$connect`, client frames and publish calls all draw on it; the WebSocket stage's rate is
 * sized from `expectedConnections`, lib/sizing.ts).
 */
export function checkBudget(config: SwitchboardConfig): void {
  if (fanoutRate(config) < 1) {
    throw new Error(
      `context postBudgetPerSecond (${config.postBudgetPerSecond}) must be at least publisherMaxConcurrency (${config.publisherMaxConcurrency})`,
    );
  }
  const total = config.postBudgetPerSecond + config.webSocketThrottle.rateLimit + config.publishThrottle.rateLimit;
  if (total > config.accountRequestsPerSecond) {
    throw new Error(
      `postBudgetPerSecond (${config.postBudgetPerSecond}/s) + webSocketRateLimit (${config.webSocketThrottle.rateLimit}/s, ` +
        `expectedConnections ${config.sizing.expectedConnections}) + publishRateLimit (${config.publishThrottle.rateLimit}/s) = ${total}/s ` +
        `exceeds the account's API Gateway quota accountRequestsPerSecond = ${config.accountRequestsPerSecond}/s: ` +
        `lower them, or raise the quota with AWS and set accountRequestsPerSecond`,
    );
  }
  for (const [name, t] of [
    ['webSocket', config.webSocketThrottle],
    ['publish', config.publishThrottle],
  ] as const) {
    if (t.burstLimit < t.rateLimit) {
      throw new Error(`context ${name}BurstLimit (${t.burstLimit}) must be at least ${name}RateLimit (${t.rateLimit})`);
    }
  }
}
