// The Lambda functions: one Rust function from its `cargo lambda` zip each, with its own
// role and log group, and the per-function settings that differ.

import * as cdk from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as fs from 'fs';
import * as path from 'path';
import { FunctionName, SwitchboardConfig, TracingMode } from './config';
import { bootstrapArchitecture, ElfArchitecture } from './elf';
import { EVENTS_TIMEOUT_SECS } from './events';

/** Per-function settings that differ; everything else is shared. */
const FUNCTION_SETTINGS: Record<FunctionName, { memory: number; timeoutSecs?: number; description: string }> = {
  authorizer: { memory: 256, timeoutSecs: 10, description: 'Switchboard: verifies the JWT on $connect (REQUEST authorizer)' },
  connect: { memory: 256, timeoutSecs: 10, description: 'Switchboard: $connect, writes the roster item and counts usage' },
  disconnect: { memory: 256, timeoutSecs: 10, description: 'Switchboard: $disconnect, deletes the roster item and counts usage' },
  // Timeout: `defaultTimeoutSecs` (≤ 28 s: the `$default` integration times out at 29 s).
  default: { memory: 256, description: 'Switchboard: $default, answers ping / whoami / resume / refresh / unknown_action' },
  publisher: { memory: 512, description: 'Switchboard: SQS-triggered fan-out to the connections' },
  'publish-api': { memory: 256, timeoutSecs: 15, description: 'Switchboard: POST /v1/messages (validates and enqueues), receipts, presence and usage reads' },
  events: {
    memory: 256,
    timeoutSecs: EVENTS_TIMEOUT_SECS,
    description: "Switchboard: user.online / user.offline from the roster's stream and the delayed offline checks, to EventBridge",
  },
};

/**
 * X-Ray per `tracing` context (infra/README.md: At scale). `Active`: Lambda samples requests
 * that arrive without a trace header itself, at a fixed rate (1 request/s + 5 % of the rest;
 * X-Ray sampling rules do not apply to it); `PassThrough`: only requests that arrive with a
 * sampled trace header (an SQS message sent from a sampled invocation) are recorded
 * ("Visualize Lambda function invocations using AWS X-Ray",
 * https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html). Both need the X-Ray write
 * statement CDK adds; `off` sets no TracingConfig at all.
 */
const TRACING: Record<TracingMode, lambda.Tracing | undefined> = {
  active: lambda.Tracing.ACTIVE,
  passthrough: lambda.Tracing.PASS_THROUGH,
  off: undefined,
};

/** One Rust function from its `cargo lambda` zip, with its own role and log group. */
export function rustFunction(stack: cdk.Stack, name: FunctionName, config: SwitchboardConfig, rustLog: string): lambda.Function {
  const zip = path.join(config.lambdaDir, name, 'bootstrap.zip');
  if (!fs.existsSync(zip)) {
    throw new Error(
      `missing ${zip}: build the functions first with ` +
        '`cargo lambda build --profile lambda-release --output-format zip` (add --arm64 with -c architecture=arm64), ' +
        'or point -c lambdaDir=<dir> at a folder holding <name>/bootstrap.zip',
    );
  }
  const expected: ElfArchitecture = config.architecture === lambda.Architecture.ARM_64 ? 'arm64' : 'x86_64';
  const built = bootstrapArchitecture(zip);
  if (built !== expected) {
    throw new Error(
      `${zip} holds a bootstrap built for ${built}, but the stack deploys ${expected} functions: ` +
        (expected === 'arm64'
          ? 'build with `cargo lambda build --profile lambda-release --arm64 --output-format zip`'
          : 'build with `cargo lambda build --profile lambda-release --x86-64 --output-format zip`') +
        ` or synthesize with -c architecture=${built}`,
    );
  }
  const id = pascal(name);
  const settings = FUNCTION_SETTINGS[name];
  // Recursive loop detection: the publisher sends continuation, retry and remainder work
  // items to the queue that triggers it, and the SDK forwards the invocation's trace
  // header on each SendMessage, so Lambda counts the hops and, with the default
  // `RecursiveLoop: Terminate`, stops the chain after about 16 ("Use Lambda recursive
  // loop detection to prevent infinite loops",
  // https://docs.aws.amazon.com/lambda/latest/dg/invocation-recursion.html): a fan-out of
  // more than ~16 pages would be cut off. The publisher alone opts out (`Allow`, CloudFormation
  // AWS::Lambda::Function.RecursiveLoop) and bounds its chains itself: every work item
  // carries a hop count and is dead-lettered past a bound derived from the configuration
  // (docs/design.md: Fan-out at any size). Every other function keeps Lambda's default.

  const logGroup = new logs.LogGroup(stack, `${id}Logs`, { retention: logs.RetentionDays.ONE_MONTH });
  const role = new iam.Role(stack, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: `Switchboard ${name} function`,
  });
  logGroup.grantWrite(role);
  return new lambda.Function(stack, `${id}Function`, {
    description: settings.description,
    runtime: lambda.Runtime.PROVIDED_AL2023,
    architecture: config.architecture,
    handler: 'bootstrap',
    code: lambda.Code.fromAsset(zip),
    memorySize: settings.memory,
    timeout: cdk.Duration.seconds(
      name === 'default' ? config.defaultTimeoutSecs : (settings.timeoutSecs ?? config.publisherTimeoutSecs),
    ),
    role,
    logGroup,
    environment: { RUST_LOG: rustLog },
    tracing: TRACING[config.tracing],
    recursiveLoop: name === 'publisher' ? lambda.RecursiveLoop.ALLOW : undefined,
  });
}

/** A function name as a construct id part: `publish-api` → `PublishApi`. */
export function pascal(name: string): string {
  return name
    .split('-')
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');
}
