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

/** The six Rust binaries of `services/lambdas`, as `cargo lambda build` names their folders. */
export const FUNCTION_NAMES = ['authorizer', 'connect', 'disconnect', 'default', 'publisher', 'publish-api'] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

export interface SwitchboardConfig {
  /**
   * Folder holding `<name>/bootstrap.zip` for each function, as written by
   * `cargo lambda build --release --output-format zip` (default `<repo>/target/lambda`).
   */
  readonly lambdaDir: string;
  /** `x86_64` (default) or `arm64`; the zips must be built for it (`cargo lambda build --arm64`). */
  readonly architecture: lambda.Architecture;
  /** Physical roster table name; unset lets CloudFormation name it (it reaches the functions as ROSTER_TABLE). */
  readonly rosterTableName?: string;
  /** FANOUT_CONCURRENCY for the publisher (SPEC §5, default 64). */
  readonly fanoutConcurrency: number;
  /** SCAN_SEGMENTS for the publisher's broadcast scan (SPEC §3, default 4). */
  readonly scanSegments: number;
  /** LEGACY_BROADCAST for the publisher (SPEC §4, default false). */
  readonly legacyBroadcast: boolean;
  /** CONNECTION_TTL_SECS for connect (SPEC §9, default 7500 = 2 h 5 min). */
  readonly connectionTtlSecs: number;
  /** Publisher timeout in seconds; the queue's visibility timeout is 6× this (AWS guidance). */
  readonly publisherTimeoutSecs: number;
  /** Optional SNS topic ARN that every alarm notifies. */
  readonly alarmTopicArn?: string;
  /**
   * Create the account-wide API Gateway CloudWatch Logs role (AWS::ApiGateway::Account).
   * WebSocket access logging needs one per account and region; leave false when the
   * account already has it (it is a singleton: a second stack setting it would overwrite it).
   */
  readonly createApiGatewayLogsRole: boolean;
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
  return {
    lambdaDir: lambdaDir ? path.resolve(lambdaDir) : DEFAULT_LAMBDA_DIR,
    architecture: architecture(str(node, 'architecture')),
    rosterTableName: str(node, 'rosterTableName') || undefined,
    fanoutConcurrency: int(node, 'fanoutConcurrency', 64, 1, 1000),
    scanSegments: int(node, 'scanSegments', 4, 1, 1000),
    legacyBroadcast: bool(node, 'legacyBroadcast', false),
    connectionTtlSecs: int(node, 'connectionTtlSecs', 7500, 60, 86400),
    publisherTimeoutSecs: int(node, 'publisherTimeoutSecs', 60, 5, 900),
    alarmTopicArn: str(node, 'alarmTopicArn') || undefined,
    createApiGatewayLogsRole: bool(node, 'createApiGatewayLogsRole', false),
    parameterDefaults: {
      jwtJwksUrl: str(node, 'jwtJwksUrl') || undefined,
      jwtIssuer: str(node, 'jwtIssuer') ?? '',
      jwtAudience: str(node, 'jwtAudience') ?? '',
      tenantClaim: str(node, 'tenantClaim') ?? 'tenant',
      rolesClaim: str(node, 'rolesClaim') ?? 'roles',
      logLevel: str(node, 'logLevel') ?? 'info',
    },
  };
}
