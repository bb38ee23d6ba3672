// What `cdk synth` must produce (docs/design.md: AWS deployment), asserted on the synthesized template.
import * as cdk from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { configFromContext, FUNCTION_NAMES, FunctionName } from '../lib/config';
import { bootstrapArchitecture, elfArchitecture, zipEntryPrefix } from '../lib/elf';
import { AUTHORIZER_FAILURE_PATTERNS } from '../lib/connect-alarms';
import { AUTH_FAILURE_MESSAGES, SwitchboardStack, USAGE_KEY_PATTERN } from '../lib/switchboard-stack';
import { elfHeader, zipOf } from './fake-lambdas';
import { build, Built, fakeLambdaDir, validationReport } from './helpers';

type Resources = Record<string, { Type: string; Properties?: any; DependsOn?: any }>;

let built: Built;
let template: Template;
let resources: Resources;

beforeAll(() => {
  built = build();
  template = Template.fromStack(built.stack);
  resources = template.toJSON().Resources;
});

const logicalId = (construct: { node: { defaultChild?: unknown } } | cdk.CfnElement): string => {
  const el = (construct instanceof cdk.CfnElement ? construct : construct.node.defaultChild) as cdk.CfnElement;
  return built.stack.resolve(el.logicalId);
};
const fnId = (name: FunctionName) => logicalId(built.stack.functions[name]);
const pascalName = (name: string) =>
  name
    .split('-')
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');
const tableId = () => logicalId(built.stack.table);
const historyId = () => logicalId(built.stack.historyTable);
const queueId = () => logicalId(built.stack.queue);
const dlqId = () => logicalId(built.stack.deadLetterQueue);
const wsApiId = () => logicalId(built.stack.webSocketApi);

/** The statements of the inline policies attached to a function's role, Action always an array. */
function statementsOf(name: FunctionName): any[] {
  const fn = resources[fnId(name)];
  const roleId = fn.Properties.Role['Fn::GetAtt'][0];
  const out: any[] = [];
  for (const r of Object.values(resources)) {
    if (r.Type !== 'AWS::IAM::Policy') continue;
    if (!r.Properties.Roles.some((ref: any) => ref.Ref === roleId)) continue;
    for (const s of r.Properties.PolicyDocument.Statement) {
      out.push({ ...s, Action: [s.Action].flat() });
    }
  }
  return out;
}

const xrayStatement = {
  Effect: 'Allow',
  Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
  Resource: '*',
};

const logStatement = (name: FunctionName) => {
  const logGroupId = resources[fnId(name)].Properties.LoggingConfig.LogGroup.Ref;
  return {
    Effect: 'Allow',
    Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    Resource: { 'Fn::GetAtt': [logGroupId, 'Arn'] },
  };
};

describe('resources', () => {
  test('exactly the resources docs/design.md: AWS deployment (and §10, §11) asks for', () => {
    const expected: Record<string, number> = {
      'AWS::DynamoDB::Table': 2, // roster, history
      'AWS::SQS::Queue': 2,
      'AWS::SQS::QueuePolicy': 2,
      'AWS::Lambda::Function': 6,
      'AWS::Lambda::EventSourceMapping': 1,
      'AWS::IAM::Role': 6,
      'AWS::IAM::Policy': 6,
      'AWS::Logs::LogGroup': 7, // one per function, the HTTP API's access log (WebSocket access logs are opt-in)
      'AWS::ApiGatewayV2::Api': 2,
      'AWS::ApiGatewayV2::Route': 8, // $connect, $disconnect, $default; POST /v1/messages, GET /v1/messages/{id}, 2 × GET …/presence, GET …/usage
      'AWS::ApiGatewayV2::Integration': 4,
      'AWS::ApiGatewayV2::Authorizer': 1,
      'AWS::ApiGatewayV2::Stage': 2,
      'AWS::ApiGatewayV2::RouteResponse': 1,
      'AWS::Lambda::Permission': 9, // one per WebSocket route and authorizer, one per HTTP route
      'AWS::CloudWatch::Alarm': 16,
      'AWS::Logs::MetricFilter': 3 + AUTHORIZER_FAILURE_PATTERNS.length, // key-source failures; authorizer timeouts/crashes
      'AWS::SNS::Topic': 1,
      'AWS::SNS::TopicPolicy': 1,
      'AWS::CloudWatch::Dashboard': 1,
    };
    const counts: Record<string, number> = {};
    for (const r of Object.values(resources)) counts[r.Type] = (counts[r.Type] ?? 0) + 1;
    expect(counts).toEqual(expected);
  });

  test('the stack is environment-agnostic and has no bootstrap-version rule', () => {
    expect(built.stack.resolve(built.stack.region)).toEqual({ Ref: 'AWS::Region' });
    const json = template.toJSON();
    expect(json.Rules?.CheckBootstrapVersion).toBeUndefined();
    expect(json.Parameters?.BootstrapVersion).toBeUndefined();
  });
});

describe('roster table (docs/design.md: Roster)', () => {
  test('PK/SK strings, on-demand, TTL on expiresAt, point-in-time recovery, deletion protection, generated name', () => {
    expect(resources[tableId()]).toMatchObject({
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        KeySchema: [
          { AttributeName: 'PK', KeyType: 'HASH' },
          { AttributeName: 'SK', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        DeletionProtectionEnabled: true,
      },
    });
    expect(resources[tableId()].Properties.AttributeDefinitions).toEqual(
      expect.arrayContaining([
        { AttributeName: 'PK', AttributeType: 'S' },
        { AttributeName: 'SK', AttributeType: 'S' },
        { AttributeName: 'GSI1PK', AttributeType: 'S' },
        { AttributeName: 'GSI1SK', AttributeType: 'S' },
      ]),
    );
    expect(resources[tableId()].Properties.TableName).toBeUndefined();
  });

  test('GSI byUser on GSI1PK/GSI1SK projecting ALL, and no other index', () => {
    const props = resources[tableId()].Properties;
    expect(props.AttributeDefinitions).toHaveLength(4);
    expect(props.GlobalSecondaryIndexes).toEqual([
      {
        IndexName: 'byUser',
        KeySchema: [
          { AttributeName: 'GSI1PK', KeyType: 'HASH' },
          { AttributeName: 'GSI1SK', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ]);
    expect(props.LocalSecondaryIndexes).toBeUndefined();
  });

  test('a physical name can be chosen by context', () => {
    const t = Template.fromStack(build({ rosterTableName: 'SocketRoster' }).stack);
    t.hasResourceProperties('AWS::DynamoDB::Table', { TableName: 'SocketRoster', DeletionProtectionEnabled: true });
  });

  test('deletion protection can be turned off by context (for a deliberate teardown)', () => {
    const b = build({ tableDeletionProtection: 'false' });
    const json = Template.fromStack(b.stack).toJSON();
    const rosterId = b.stack.resolve((b.stack.table.node.defaultChild as cdk.CfnElement).logicalId);
    expect(json.Resources[rosterId].Properties.DeletionProtectionEnabled).toBe(false);
  });
});

describe('history table (docs/design.md: History and resume)', () => {
  test('PK/SK strings and nothing else, on-demand, TTL on expiresAt, no index, generated name', () => {
    const h = resources[historyId()];
    expect(h.Properties.KeySchema).toEqual([
      { AttributeName: 'PK', KeyType: 'HASH' },
      { AttributeName: 'SK', KeyType: 'RANGE' },
    ]);
    expect(h.Properties.AttributeDefinitions).toEqual([
      { AttributeName: 'PK', AttributeType: 'S' },
      { AttributeName: 'SK', AttributeType: 'S' },
    ]);
    expect(h.Properties.BillingMode).toBe('PAY_PER_REQUEST');
    expect(h.Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(h.Properties.GlobalSecondaryIndexes).toBeUndefined();
    expect(h.Properties.LocalSecondaryIndexes).toBeUndefined();
    expect(h.Properties.TableName).toBeUndefined();
    expect(h.Properties.ProvisionedThroughput).toBeUndefined();
  });

  test('a 5-minute buffer: no point-in-time recovery, no deletion protection, deleted with the stack', () => {
    const h = resources[historyId()] as any;
    expect(h.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: false });
    expect(h.Properties.DeletionProtectionEnabled).toBe(false);
    expect(h.DeletionPolicy).toBe('Delete');
    expect(h.UpdateReplacePolicy).toBe('Delete');
  });

  test('encrypted with the AWS managed key, like the roster', () => {
    // AWS_MANAGED: SSESpecification.SSEEnabled true (KMS, the aws/dynamodb key).
    expect(resources[historyId()].Properties.SSESpecification).toEqual(resources[tableId()].Properties.SSESpecification);
    expect(resources[historyId()].Properties.SSESpecification).toEqual({ SSEEnabled: true });
  });

  test('the name, HISTORY_TTL_SECS, RESUME_MAX and the default timeout come from context', () => {
    const b = build({ historyTableName: 'SocketHistory', historyTtlSecs: '0', resumeMax: '2000', defaultTimeoutSecs: '20' });
    const json = Template.fromStack(b.stack).toJSON();
    const id = (c: { node: { defaultChild?: unknown } }) => b.stack.resolve((c.node.defaultChild as cdk.CfnElement).logicalId);
    expect(json.Resources[id(b.stack.historyTable)].Properties.TableName).toBe('SocketHistory');
    const def = json.Resources[id(b.stack.functions.default)].Properties;
    const pub = json.Resources[id(b.stack.functions.publisher)].Properties;
    expect(def.Environment.Variables).toMatchObject({ HISTORY_TABLE: { Ref: id(b.stack.historyTable) }, HISTORY_TTL_SECS: '0', RESUME_MAX: '2000' });
    expect(pub.Environment.Variables).toMatchObject({ HISTORY_TABLE: { Ref: id(b.stack.historyTable) }, HISTORY_TTL_SECS: '0' });
    expect(def.Timeout).toBe(20);
  });

  test('out-of-range history settings stop synthesis (the bounds of the Rust configuration)', () => {
    expect(() => build({ historyTtlSecs: '86401' })).toThrow(/historyTtlSecs/);
    expect(() => build({ historyTtlSecs: '-1' })).toThrow(/historyTtlSecs/);
    expect(() => build({ resumeMax: '0' })).toThrow(/resumeMax/);
    expect(() => build({ resumeMax: '10001' })).toThrow(/resumeMax/);
    expect(() => build({ defaultTimeoutSecs: '1' })).toThrow(/defaultTimeoutSecs/);
    expect(() => build({ defaultTimeoutSecs: '29' })).toThrow(/defaultTimeoutSecs: expected an integer in \[3, 28\]/);
    expect(() => build({ receiptTtlSecs: '604801' })).toThrow(/receiptTtlSecs/);
    expect(() => build({ receiptTtlSecs: '-1' })).toThrow(/receiptTtlSecs/);
  });

  test('RECEIPT_TTL_SECS comes from context (0 turns receipts off)', () => {
    const b = build({ receiptTtlSecs: '0' });
    const json = Template.fromStack(b.stack).toJSON();
    const id = (c: { node: { defaultChild?: unknown } }) => b.stack.resolve((c.node.defaultChild as cdk.CfnElement).logicalId);
    for (const fn of [b.stack.functions.publisher, b.stack.functions['publish-api']]) {
      expect(json.Resources[id(fn)].Properties.Environment.Variables.RECEIPT_TTL_SECS).toBe('0');
    }
  });

  test('USAGE_RETENTION_DAYS comes from context, within the Rust bounds (services/core/src/usage/config.rs: 1–400)', () => {
    const b = build({ usageRetentionDays: '400' });
    const json = Template.fromStack(b.stack).toJSON();
    const id = (c: { node: { defaultChild?: unknown } }) => b.stack.resolve((c.node.defaultChild as cdk.CfnElement).logicalId);
    const fns = b.stack.functions;
    for (const fn of [fns.publisher, fns['publish-api'], fns.connect, fns.disconnect]) {
      expect(json.Resources[id(fn)].Properties.Environment.Variables.USAGE_RETENTION_DAYS).toBe('400');
    }
    for (const fn of [fns.authorizer, fns.default]) {
      expect(json.Resources[id(fn)].Properties.Environment.Variables.USAGE_RETENTION_DAYS).toBeUndefined();
    }
    for (const bad of ['0', '401', '-1', '35.5', 'a month']) {
      expect(() => build({ usageRetentionDays: bad })).toThrow(/context usageRetentionDays: expected an integer in \[1, 400\]/);
    }
  });

  test('its name is an output', () => {
    expect(template.toJSON().Outputs.HistoryTableName.Value).toEqual({ Ref: historyId() });
  });
});

describe('queues (docs/design.md: Publisher)', () => {
  test('the queue redrives to the DLQ after 5 receives, visibility 6× the publisher timeout', () => {
    const q = resources[queueId()].Properties;
    expect(q.RedrivePolicy).toEqual({ deadLetterTargetArn: { 'Fn::GetAtt': [dlqId(), 'Arn'] }, maxReceiveCount: 5 });
    const publisherTimeout = resources[fnId('publisher')].Properties.Timeout;
    expect(publisherTimeout).toBe(60);
    expect(q.VisibilityTimeout).toBe(6 * publisherTimeout);
  });

  test('both queues are encrypted (SSE-SQS) and refuse non-TLS requests', () => {
    for (const id of [queueId(), dlqId()]) {
      expect(resources[id].Properties.SqsManagedSseEnabled).toBe(true);
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: id }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sqs:*',
              Principal: { AWS: '*' },
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    }
    expect(resources[dlqId()].Properties.MessageRetentionPeriod).toBe(14 * 24 * 3600);
  });

  test('the publisher consumes the queue with partial batch responses, batches of 10, at most 10 at once', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [queueId(), 'Arn'] },
      FunctionName: { Ref: fnId('publisher') },
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 10 },
    });
  });

});

describe('functions', () => {
  test.each(FUNCTION_NAMES)('%s: provided.al2023, bootstrap, x86_64, its own zip, role and log group', (name) => {
    const p = resources[fnId(name)].Properties;
    expect(p.Runtime).toBe('provided.al2023');
    expect(p.Handler).toBe('bootstrap');
    expect(p.Architectures).toEqual(['x86_64']);
    expect(p.Code.S3Key).toMatch(/^[0-9a-f]{64}\.zip$/);
    expect(p.Environment.Variables.RUST_LOG).toEqual({ Ref: 'LogLevel' });
    expect(p.LoggingConfig.LogGroup.Ref).toBeDefined();
    expect(p.TracingConfig).toEqual({ Mode: 'Active' });
    const roleId = p.Role['Fn::GetAtt'][0];
    expect(resources[roleId].Properties.ManagedPolicyArns).toBeUndefined();
    expect(resources[roleId].Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
    ]);
  });

  test('timeouts: 10 s for the WebSocket hooks, 28 s for default (under the 29 s integration timeout), 15 s publish-api', () => {
    const timeout = (n: FunctionName) => resources[fnId(n)].Properties.Timeout;
    expect(FUNCTION_NAMES.map((n) => [n, timeout(n)])).toEqual([
      ['authorizer', 10],
      ['connect', 10],
      ['disconnect', 10],
      ['default', 28],
      ['publisher', 60],
      ['publish-api', 15],
    ]);
  });

  test('every function has its own asset and its own role', () => {
    const keys = FUNCTION_NAMES.map((n) => resources[fnId(n)].Properties.Code.S3Key);
    const roles = FUNCTION_NAMES.map((n) => resources[fnId(n)].Properties.Role['Fn::GetAtt'][0]);
    expect(new Set(keys).size).toBe(6);
    expect(new Set(roles).size).toBe(6);
  });

  test('-c tracing=false turns X-Ray off and drops its IAM statement', () => {
    const json = Template.fromStack(build({ tracing: 'false' }).stack).toJSON();
    for (const r of Object.values(json.Resources as Resources)) {
      if (r.Type === 'AWS::Lambda::Function') expect(r.Properties.TracingConfig).toBeUndefined();
      if (r.Type === 'AWS::IAM::Policy') expect(JSON.stringify(r.Properties)).not.toContain('xray:');
    }
  });

  test('-c architecture=arm64 builds arm64 functions', () => {
    const t = build({ architecture: 'arm64' }).stack;
    const json = Template.fromStack(t).toJSON();
    const fns = Object.values(json.Resources as Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(fns).toHaveLength(6);
    for (const f of fns) expect(f.Properties.Architectures).toEqual(['arm64']);
  });

  test('an unknown architecture stops synthesis', () => {
    expect(() => build({ architecture: 'mips' })).toThrow(/architecture/);
  });

  test('a missing zip stops synthesis with a message saying how to build it', () => {
    const dir = fakeLambdaDir();
    fs.rmSync(path.join(dir, 'publisher'), { recursive: true });
    const app = new cdk.App({ context: { lambdaDir: dir } });
    expect(() => new SwitchboardStack(app, 'S', { config: configFromContext(app.node) })).toThrow(
      /publisher\/bootstrap\.zip.*cargo lambda build --release --output-format zip/,
    );
  });

  test('environment of each function (docs/design.md: Configuration)', () => {
    const env = (n: FunctionName) => resources[fnId(n)].Properties.Environment.Variables;
    const table = { Ref: tableId() };
    const history = { HISTORY_TABLE: { Ref: historyId() }, HISTORY_TTL_SECS: '300' };
    const callbackUrl = {
      'Fn::Join': [
        '',
        ['https://', { Ref: wsApiId() }, '.execute-api.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/main'],
      ],
    };
    const identity = {
      JWT_JWKS_URL: { Ref: 'JwtJwksUrl' },
      JWT_ISSUER: { 'Fn::If': ['HasJwtIssuer', { Ref: 'JwtIssuer' }, { Ref: 'AWS::NoValue' }] },
      JWT_AUDIENCE: { 'Fn::If': ['HasJwtAudience', { Ref: 'JwtAudience' }, { Ref: 'AWS::NoValue' }] },
      TENANT_CLAIM: { Ref: 'TenantClaim' },
      ROLES_CLAIM: { Ref: 'RolesClaim' },
    };
    const log = { RUST_LOG: { Ref: 'LogLevel' } };
    expect(env('authorizer')).toEqual({ ...log, ...identity });
    const metrics = { METRICS_NAMESPACE: 'Switchboard/Switchboard' };
    const receipts = { RECEIPT_TTL_SECS: '86400' };
    // Usage per tenant (docs/design.md: Usage): in the history table, kept USAGE_RETENTION_DAYS.
    const usage = { USAGE_RETENTION_DAYS: '35' };
    expect(env('publish-api')).toEqual({
      ...log,
      ...identity,
      QUEUE_URL: { Ref: queueId() },
      ROSTER_TABLE: table,
      HISTORY_TABLE: { Ref: historyId() },
      ...receipts,
      ...usage,
      ...metrics,
    });
    expect(env('connect')).toEqual({ ...log, ROSTER_TABLE: table, HISTORY_TABLE: { Ref: historyId() }, ...usage, CONNECTION_TTL_SECS: '7500' });
    expect(env('disconnect')).toEqual({ ...log, ROSTER_TABLE: table, HISTORY_TABLE: { Ref: historyId() }, ...usage });
    // default verifies `refresh` tokens as the authorizer does and moves tokenExpiresAt.
    expect(env('default')).toEqual({ ...log, ...identity, ROSTER_TABLE: table, ...history, RESUME_MAX: '500', CALLBACK_URL: callbackUrl });
    expect(env('publisher')).toEqual({
      ...log,
      ROSTER_TABLE: table,
      ...history,
      ...receipts,
      ...usage,
      CALLBACK_URL: callbackUrl,
      DLQ_URL: { Ref: dlqId() },
      FANOUT_CONCURRENCY: '64',
      SCAN_SEGMENTS: '4',
      LEGACY_BROADCAST: 'false',
      QUEUE_URL: { Ref: queueId() },
      FANOUT_SHARD_SIZE: '1000',
      GONE_GRACE_SECS: '30',
      FANOUT_RATE: '500',
      ...metrics,
    });
  });

  test('publisher knobs come from context', () => {
    const s = build({ fanoutConcurrency: '16', scanSegments: '8', legacyBroadcast: 'true' }).stack;
    const vars = Template.fromStack(s).toJSON().Resources[s.resolve((s.functions.publisher.node.defaultChild as cdk.CfnElement).logicalId)]
      .Properties.Environment.Variables;
    expect(vars).toMatchObject({ FANOUT_CONCURRENCY: '16', SCAN_SEGMENTS: '8', LEGACY_BROADCAST: 'true' });
    expect(() => build({ fanoutConcurrency: 'many' })).toThrow(/fanoutConcurrency/);
  });

  test('the metrics namespace can be chosen by context', () => {
    const s = build({ metricsNamespace: 'Acme/Notifications' }).stack;
    const json = Template.fromStack(s).toJSON();
    const vars = json.Resources[s.resolve((s.functions.publisher.node.defaultChild as cdk.CfnElement).logicalId)].Properties.Environment.Variables;
    expect(vars.METRICS_NAMESPACE).toBe('Acme/Notifications');
    const filters = Object.values(json.Resources as Resources).filter((r) => r.Type === 'AWS::Logs::MetricFilter');
    for (const f of filters) expect(f.Properties.MetricTransformations[0].MetricNamespace).toBe('Acme/Notifications');
  });

  test('METRICS_TENANTS reaches the publisher and publish-api only when metricsTenants is set', () => {
    const varsOf = (context: Record<string, unknown>) => {
      const s = build(context).stack;
      const json = Template.fromStack(s).toJSON();
      return (name: FunctionName) =>
        json.Resources[s.resolve((s.functions[name].node.defaultChild as cdk.CfnElement).logicalId)].Properties.Environment.Variables;
    };
    const unset = varsOf({});
    for (const name of FUNCTION_NAMES) expect(unset(name).METRICS_TENANTS).toBeUndefined();
    const set = varsOf({ metricsTenants: ' acme, big-co ,acme,' });
    expect(set('publisher').METRICS_TENANTS).toBe('acme,big-co');
    expect(set('publish-api').METRICS_TENANTS).toBe('acme,big-co');
    for (const name of FUNCTION_NAMES.filter((n) => n !== 'publisher' && n !== 'publish-api')) {
      expect(set(name).METRICS_TENANTS).toBeUndefined();
    }
  });

  test('metricsTenants are checked at synth: tenant ids, at most 20', () => {
    expect(() => build({ metricsTenants: 'acme,*' })).toThrow(/context metricsTenants: tenant id '\*' '\*' is reserved/);
    expect(() => build({ metricsTenants: 'a#b' })).toThrow(/context metricsTenants: tenant id 'a#b' must not contain '#'/);
    expect(() => build({ metricsTenants: 'café' })).toThrow(/context metricsTenants: tenant id 'café' must be ASCII/);
    expect(() => build({ metricsTenants: 'x'.repeat(129) })).toThrow(/context metricsTenants: .* at most 128 characters/);
    const list = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`).join(',');
    expect(() => build({ metricsTenants: list(20) })).not.toThrow();
    expect(() => build({ metricsTenants: list(21) })).toThrow(/context metricsTenants: lists 21 tenants; at most 20/);
  });
});

describe('rate budget (docs/design.md: Fan-out at any size): one budget gives maxConcurrency and FANOUT_RATE', () => {
  const budgetOf = (context: Record<string, unknown>) => {
    const s = build(context).stack;
    const json = Template.fromStack(s).toJSON();
    const fnRes = json.Resources[s.resolve((s.functions.publisher.node.defaultChild as cdk.CfnElement).logicalId)];
    const esm = Object.values(json.Resources as Resources).find((r) => r.Type === 'AWS::Lambda::EventSourceMapping')!;
    return { rate: Number(fnRes.Properties.Environment.Variables.FANOUT_RATE), max: esm.Properties.ScalingConfig.MaximumConcurrency };
  };

  test('default: 5,000 posts/s over 10 publishers = 500 each', () => {
    expect(budgetOf({})).toEqual({ rate: 500, max: 10 });
  });

  test('FANOUT_RATE = floor(budget / maxConcurrency), never above the budget in total', () => {
    const { rate, max } = budgetOf({ postBudgetPerSecond: '7000', publisherMaxConcurrency: '3' });
    expect({ rate, max }).toEqual({ rate: 2333, max: 3 });
    expect(rate * max).toBeLessThanOrEqual(7000);
  });

  test('maxConcurrency below 2 (the SQS minimum) or a budget below it stops synthesis', () => {
    expect(() => build({ publisherMaxConcurrency: '1' })).toThrow(/publisherMaxConcurrency/);
    expect(() => build({ postBudgetPerSecond: '5', publisherMaxConcurrency: '10' })).toThrow(/postBudgetPerSecond/);
  });

  test('budget plus both stage rate limits must fit the account quota', () => {
    expect(() => build({ postBudgetPerSecond: '9000' })).toThrow(/exceeds the account's API Gateway quota/);
    expect(budgetOf({ postBudgetPerSecond: '9000', accountRequestsPerSecond: '20000' })).toEqual({ rate: 900, max: 10 });
  });
});

describe('JWT_ISSUERS_FILE (docs/design.md: Identity per issuer): a layer for the functions that verify tokens', () => {
  /** An issuers file with a URL issuer and a file issuer (a relative jwksFile), in a new folder. */
  const issuersFile = (issuers?: unknown): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-issuers-test-'));
    fs.mkdirSync(path.join(dir, 'keys'));
    fs.writeFileSync(path.join(dir, 'keys', 'ops.json'), JSON.stringify({ keys: [{ kty: 'EC', kid: 'ops-1' }] }));
    const file = path.join(dir, 'issuers.json');
    fs.writeFileSync(
      file,
      JSON.stringify(
        issuers ?? {
          issuers: [
            { issuer: 'https://acme.example', jwksUrl: 'https://acme.example/jwks.json', tenants: ['acme'] },
            { issuer: 'https://ops.example', jwksFile: 'keys/ops.json', tenants: '*', globalAdmin: true },
          ],
        },
      ),
    );
    return file;
  };

  test('authorizer, default and publish-api get the layer and JWT_ISSUERS_FILE; no JWKS URL parameter', () => {
    const b = build({ jwtIssuersFile: issuersFile() });
    const json = Template.fromStack(b.stack).toJSON();
    const res = json.Resources as Resources;
    const [layerId, layer] = Object.entries(res).find(([, r]) => r.Type === 'AWS::Lambda::LayerVersion')!;
    expect(layer.Properties.CompatibleArchitectures).toEqual(['x86_64']);
    const fnRes = (n: FunctionName) => res[b.stack.resolve((b.stack.functions[n].node.defaultChild as cdk.CfnElement).logicalId)];
    for (const n of ['authorizer', 'default', 'publish-api'] as const) {
      expect(fnRes(n).Properties.Layers).toEqual([{ Ref: layerId }]);
      const vars = fnRes(n).Properties.Environment.Variables;
      expect(vars).toMatchObject({
        JWT_ISSUERS_FILE: '/opt/switchboard/issuers.json',
        TENANT_CLAIM: { Ref: 'TenantClaim' },
        ROLES_CLAIM: { Ref: 'RolesClaim' },
      });
      for (const single of ['JWT_JWKS_URL', 'JWT_ISSUER', 'JWT_AUDIENCE', 'JWT_HS256_SECRET']) expect(vars[single]).toBeUndefined();
    }
    for (const n of ['connect', 'disconnect', 'publisher'] as const) expect(fnRes(n).Properties.Layers).toBeUndefined();
    expect(Object.keys(json.Parameters).sort()).toEqual(['LogLevel', 'RolesClaim', 'TenantClaim']);
    expect(json.Conditions ?? {}).not.toHaveProperty('HasJwtIssuer');

    // The layer's asset: the issuers file, its jwksFile copied beside it and rewritten to /opt.
    // Staged by the synthesizer as asset.<hash> beside the template; S3Key is <hash>.zip.
    const key: string = layer.Properties.Content.S3Key;
    const assetDir = path.join(b.assembly.directory, `asset.${key.replace(/\.zip$/, '')}`);
    const shipped = JSON.parse(fs.readFileSync(path.join(assetDir, 'switchboard', 'issuers.json'), 'utf8'));
    expect(shipped.issuers[0]).toEqual({ issuer: 'https://acme.example', jwksUrl: 'https://acme.example/jwks.json', tenants: ['acme'] });
    expect(shipped.issuers[1]).toMatchObject({ issuer: 'https://ops.example', jwksFile: '/opt/switchboard/jwks-1.json', globalAdmin: true });
    expect(JSON.parse(fs.readFileSync(path.join(assetDir, 'switchboard', 'jwks-1.json'), 'utf8')).keys[0].kid).toBe('ops-1');
    expect(validationReport(b.assembly.directory).violations).toEqual([]);
  });

  test('with the single key source settings too, synthesis stops naming both', () => {
    const file = issuersFile();
    for (const single of ['jwtJwksUrl', 'jwtIssuer', 'jwtAudience']) {
      expect(() => build({ jwtIssuersFile: file, [single]: 'https://example.com/x' })).toThrow(
        new RegExp(`jwtIssuersFile and ${single} are exclusive`),
      );
    }
  });

  test('a file that cannot be shipped stops synthesis with the reason', () => {
    expect(() => build({ jwtIssuersFile: '/nonexistent/issuers.json' })).toThrow(/jwtIssuersFile \(\/nonexistent\/issuers.json\): cannot be read/);
    expect(() => build({ jwtIssuersFile: issuersFile({ issuers: [] }) })).toThrow(/at least one issuer/);
    expect(() => build({ jwtIssuersFile: issuersFile({ issuers: [{ issuer: 'i', tenants: '*' }] }) })).toThrow(
      /exactly one of "jwksUrl", "jwksFile"/,
    );
    expect(() => build({ jwtIssuersFile: issuersFile({ issuers: [{ issuer: 'i', jwksFile: 'missing.json', tenants: '*' }] }) })).toThrow(
      /missing\.json does not exist/,
    );
  });
});

describe('parameters', () => {
  test('identity settings are deploy-time parameters; the JWKS URL has no default', () => {
    const params = template.toJSON().Parameters;
    expect(params.JwtJwksUrl).toEqual(expect.objectContaining({ Type: 'String', AllowedPattern: '^https://\\S+$' }));
    expect(params.JwtJwksUrl.Default).toBeUndefined();
    expect(params.JwtIssuer.Default).toBe('');
    expect(params.JwtAudience.Default).toBe('');
    expect(params.TenantClaim.Default).toBe('tenant');
    expect(params.RolesClaim.Default).toBe('roles');
    expect(params.LogLevel.Default).toBe('info');
    expect(Object.keys(params).sort()).toEqual(['JwtAudience', 'JwtIssuer', 'JwtJwksUrl', 'LogLevel', 'RolesClaim', 'TenantClaim']);
  });

  test('context sets the parameter defaults (e.g. Cognito)', () => {
    const s = build({ tenantClaim: 'custom:tenant_id', jwtJwksUrl: 'https://example.com/jwks.json' }).stack;
    const params = Template.fromStack(s).toJSON().Parameters;
    expect(params.TenantClaim.Default).toBe('custom:tenant_id');
    expect(params.JwtJwksUrl.Default).toBe('https://example.com/jwks.json');
  });

  test('an empty issuer/audience leaves the variable out instead of setting it to ""', () => {
    const conditions = template.toJSON().Conditions;
    expect(conditions.HasJwtIssuer).toEqual({ 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'JwtIssuer' }, ''] }] });
    expect(conditions.HasJwtAudience).toEqual({ 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'JwtAudience' }, ''] }] });
  });
});

describe('WebSocket API', () => {
  const route = (key: string) => {
    const found = Object.values(resources).filter((r) => r.Type === 'AWS::ApiGatewayV2::Route' && r.Properties.RouteKey === key);
    expect(found).toHaveLength(1);
    return found[0].Properties;
  };
  const integrationFunction = (routeProps: any) => {
    const integrationId = routeProps.Target['Fn::Join'][1][1].Ref;
    const uri = resources[integrationId].Properties.IntegrationUri;
    return uri['Fn::Join'][1].find((p: any) => p['Fn::GetAtt'])['Fn::GetAtt'][0];
  };
  const authorizerId = () => Object.entries(resources).find(([, r]) => r.Type === 'AWS::ApiGatewayV2::Authorizer')![0];

  test('a WEBSOCKET API selecting routes on the body action', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'WEBSOCKET',
      RouteSelectionExpression: '$request.body.action',
    });
  });

  test('$connect → connect, with the Lambda REQUEST authorizer (CUSTOM)', () => {
    const r = route('$connect');
    expect(r.AuthorizationType).toBe('CUSTOM');
    expect(r.AuthorizerId).toEqual({ Ref: authorizerId() });
    expect(integrationFunction(r)).toBe(fnId('connect'));
  });

  test('$disconnect → disconnect and $default → default, without authorizer', () => {
    expect(route('$disconnect').AuthorizationType).toBe('NONE');
    expect(integrationFunction(route('$disconnect'))).toBe(fnId('disconnect'));
    expect(route('$default').AuthorizationType).toBe('NONE');
    expect(integrationFunction(route('$default'))).toBe(fnId('default'));
  });

  test('$default replies through a route response (resume posts its frames first, see IAM)', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::RouteResponse', { RouteResponseKey: '$default' });
  });

  test('the authorizer is the authorizer function, with no identity source (token in query or subprotocol)', () => {
    const a = resources[authorizerId()].Properties;
    expect(a.AuthorizerType).toBe('REQUEST');
    expect(a.IdentitySource).toBeUndefined();
    expect(JSON.stringify(a.AuthorizerUri)).toContain(`"${fnId('authorizer')}","Arn"`);
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [fnId('authorizer'), 'Arn'] },
      Principal: 'apigateway.amazonaws.com',
    });
  });

  test('stage main, auto-deployed, throttled at the stage; no access logs by default (fresh accounts)', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      ApiId: { Ref: wsApiId() },
      StageName: 'main',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 2000 },
      AccessLogSettings: Match.absent(),
    });
    template.resourceCountIs('AWS::ApiGateway::Account', 0);
  });

  test('throttling values come from context', () => {
    const t = Template.fromStack(build({ webSocketRateLimit: '300', webSocketBurstLimit: '600', publishRateLimit: '50', publishBurstLimit: '80' }).stack);
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: 'main',
      DefaultRouteSettings: { ThrottlingRateLimit: 300, ThrottlingBurstLimit: 600 },
    });
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 80 },
    });
    expect(() => build({ webSocketRateLimit: '300', webSocketBurstLimit: '100' })).toThrow(/webSocketBurstLimit/);
  });

  test('-c webSocketAccessLogs=true: JSON access logs (the account must have the logging role)', () => {
    const t = Template.fromStack(build({ webSocketAccessLogs: 'true' }).stack);
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: 'main',
      AccessLogSettings: {
        DestinationArn: { 'Fn::GetAtt': [Match.anyValue(), 'Arn'] },
        Format: Match.stringLikeRegexp('"connectionId":"\\$context.connectionId"'),
      },
    });
    t.resourceCountIs('AWS::ApiGateway::Account', 0);
  });

  test('the one-time logging-role step: role and account setting retained, the stage waits for them', () => {
    const t = Template.fromStack(build({ createApiGatewayLogsRole: 'true', webSocketAccessLogs: 'true' }).stack);
    t.hasResource('AWS::ApiGateway::Account', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: { CloudWatchRoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ApiGatewayLogsRole'), 'Arn'] } },
    });
    t.hasResource('AWS::IAM::Role', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'apigateway.amazonaws.com' } })] },
        ManagedPolicyArns: [Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([':iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs'])] })],
      },
    });
    t.hasResource('AWS::ApiGatewayV2::Stage', {
      Properties: { StageName: 'main' },
      DependsOn: Match.arrayWith([Match.stringLikeRegexp('^ApiGatewayAccount')]),
    });
  });
});

describe('HTTP publish API (docs/design.md: Publish API; Presence)', () => {
  const httpApiId = () => logicalId(built.stack.httpApi);

  test('POST /v1/messages, GET /v1/messages/{id}, the two presence GETs and the usage GET → publish-api (one integration), and no other route', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    const routes = Object.values(resources).filter((r) => r.Type === 'AWS::ApiGatewayV2::Route' && r.Properties.ApiId.Ref === httpApiId());
    expect(routes.map((r) => r.Properties.RouteKey).sort()).toEqual(
      [
        'GET /v1/messages/{id}',
        'GET /v1/tenants/{tenant}/presence',
        'GET /v1/tenants/{tenant}/users/{user}/presence',
        'GET /v1/tenants/{tenant}/usage',
        'POST /v1/messages',
      ].sort(),
    );
    const integrations = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::ApiGatewayV2::Integration' && r.Properties.ApiId.Ref === httpApiId());
    expect(integrations).toHaveLength(1);
    const [integrationId, integration] = integrations[0];
    expect(integration.Properties).toMatchObject({
      IntegrationType: 'AWS_PROXY',
      IntegrationUri: { 'Fn::GetAtt': [fnId('publish-api'), 'Arn'] },
      PayloadFormatVersion: '2.0',
    });
    for (const r of routes) {
      expect(r.Properties.AuthorizationType).toBe('NONE'); // publish-api verifies the JWT itself
      expect(r.Properties.Target).toEqual({ 'Fn::Join': ['', ['integrations/', { Ref: integrationId }]] });
    }
  });

  test('outputs: PublishUrl and PresenceUrl on the API endpoint', () => {
    const outputs = template.toJSON().Outputs;
    const endpoint = (tail: string) => ({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [httpApiId(), 'ApiEndpoint'] }, tail]] });
    expect(outputs.PublishUrl.Value).toEqual(endpoint('/v1/messages'));
    expect(outputs.PresenceUrl.Value).toEqual(endpoint('/v1/tenants'));
  });

  test('on the $default stage with access logs and throttling', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('\\$context.requestId') },
      DefaultRouteSettings: { ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 },
    });
  });
});

describe('least-privilege IAM (docs/design.md: AWS deployment)', () => {
  const tableArn = () => ({ 'Fn::GetAtt': [tableId(), 'Arn'] });
  /** ManageConnections on this WebSocket API's stage main, POST (or `method`) only. */
  const manageConnectionsArn = (method = 'POST') => ({
    'Fn::Join': [
      '',
      [
        'arn:',
        { Ref: 'AWS::Partition' },
        ':execute-api:',
        { Ref: 'AWS::Region' },
        ':',
        { Ref: 'AWS::AccountId' },
        ':',
        { Ref: wsApiId() },
        `/main/${method}/@connections/*`,
      ],
    ],
  });

  const historyArn = () => ({ 'Fn::GetAtt': [historyId(), 'Arn'] });
  /** Only the usage items of the history table (docs/design.md: Usage): partition keys `U#<tenant|*>`. */
  const onUsageKeys = { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['U#*'] } };
  /** usage.rs: `add` (UpdateItem ADD, and a conditional UpdateItem SET for a peak), `add_live` (UpdateItem ADD). */
  const usageCount = () => ({ Sid: 'UsageCount', Effect: 'Allow', Action: ['dynamodb:UpdateItem'], Resource: historyArn(), Condition: onUsageKeys });

  test('connect: PutItem on the table; UpdateItem on usage keys of the history table (live counter, peak)', () => {
    expect(statementsOf('connect')).toEqual([
      logStatement('connect'),
      xrayStatement,
      { Sid: 'RosterPut', Effect: 'Allow', Action: ['dynamodb:PutItem'], Resource: tableArn() },
      usageCount(),
    ]);
  });

  test('disconnect: DeleteItem on the table; UpdateItem on usage keys of the history table (live counter, minutes)', () => {
    expect(statementsOf('disconnect')).toEqual([
      logStatement('disconnect'),
      xrayStatement,
      { Sid: 'RosterDelete', Effect: 'Allow', Action: ['dynamodb:DeleteItem'], Resource: tableArn() },
      usageCount(),
    ]);
  });

  test('publisher: consume the queue, read/clean the roster, post to this API stage only, continue, dead-letter', () => {
    expect(statementsOf('publisher')).toEqual([
      logStatement('publisher'),
      xrayStatement,
      {
        Effect: 'Allow',
        Action: [
          'sqs:ReceiveMessage',
          'sqs:ChangeMessageVisibility',
          'sqs:GetQueueUrl',
          'sqs:DeleteMessage',
          'sqs:GetQueueAttributes',
        ],
        Resource: { 'Fn::GetAtt': [queueId(), 'Arn'] },
      },
      {
        Sid: 'RosterRead',
        Effect: 'Allow',
        Action: ['dynamodb:Query', 'dynamodb:Scan', 'dynamodb:BatchGetItem', 'dynamodb:DeleteItem'],
        Resource: tableArn(),
      },
      {
        Sid: 'RosterQueryByUser',
        Effect: 'Allow',
        Action: ['dynamodb:Query'],
        Resource: { 'Fn::Join': ['', [tableArn(), '/index/byUser']] },
      },
      { Sid: 'PostToConnections', Effect: 'Allow', Action: ['execute-api:ManageConnections'], Resource: manageConnectionsArn() },
      {
        Sid: 'CloseExpiredConnections',
        Effect: 'Allow',
        Action: ['execute-api:ManageConnections'],
        Resource: manageConnectionsArn('DELETE'),
      },
      { Sid: 'ContinueFanout', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: { 'Fn::GetAtt': [queueId(), 'Arn'] } },
      { Sid: 'DeadLetter', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: { 'Fn::GetAtt': [dlqId(), 'Arn'] } },
      { Sid: 'HistoryWrite', Effect: 'Allow', Action: ['dynamodb:BatchWriteItem'], Resource: { 'Fn::GetAtt': [historyId(), 'Arn'] } },
      { Sid: 'ReceiptUpdate', Effect: 'Allow', Action: ['dynamodb:UpdateItem'], Resource: { 'Fn::GetAtt': [historyId(), 'Arn'] } },
      {
        Sid: 'WorkLog',
        Effect: 'Allow',
        Action: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem'],
        Resource: { 'Fn::GetAtt': [historyId(), 'Arn'] },
      },
    ]);
  });

  test('publish-api: SendMessage on the queue; receipts in the history table; presence is Query on the roster and byUser (no Scan, no GetItem); usage is UpdateItem and Query on usage keys', () => {
    expect(statementsOf('publish-api')).toEqual([
      logStatement('publish-api'),
      xrayStatement,
      { Sid: 'Enqueue', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: { 'Fn::GetAtt': [queueId(), 'Arn'] } },
      {
        Sid: 'Receipts',
        Effect: 'Allow',
        Action: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem'],
        Resource: { 'Fn::GetAtt': [historyId(), 'Arn'] },
      },
      { Sid: 'PresenceQuery', Effect: 'Allow', Action: ['dynamodb:Query'], Resource: tableArn() },
      {
        Sid: 'PresenceQueryByUser',
        Effect: 'Allow',
        Action: ['dynamodb:Query'],
        Resource: { 'Fn::Join': ['', [tableArn(), '/index/byUser']] },
      },
      usageCount(),
      { Sid: 'UsageRead', Effect: 'Allow', Action: ['dynamodb:Query'], Resource: historyArn(), Condition: onUsageKeys },
    ]);
  });

  test('default: Query on the history table, post to this API stage only (resume); UpdateItem on the roster (refresh)', () => {
    expect(statementsOf('default')).toEqual([
      logStatement('default'),
      xrayStatement,
      { Sid: 'HistoryRead', Effect: 'Allow', Action: ['dynamodb:Query'], Resource: { 'Fn::GetAtt': [historyId(), 'Arn'] } },
      { Sid: 'RosterTokenExpiry', Effect: 'Allow', Action: ['dynamodb:UpdateItem'], Resource: tableArn() },
      { Sid: 'PostToCaller', Effect: 'Allow', Action: ['execute-api:ManageConnections'], Resource: manageConnectionsArn() },
    ]);
  });

  test('only the publisher writes history (BatchWriteItem) and only default reads it (Query); receipts: the publisher updates, publish-api puts, gets and deletes; the work log: the publisher puts, gets and deletes; usage: the publisher updates (with receipts), publish-api, connect and disconnect update and publish-api queries, on usage keys only', () => {
    const onHistory = FUNCTION_NAMES.flatMap((n) =>
      statementsOf(n)
        .filter((st) => JSON.stringify(st.Resource).includes(`"${historyId()}"`))
        .map((st) => `${n} ${st.Action.join(',')}${st.Condition ? ` if ${JSON.stringify(st.Condition)}` : ''}`),
    );
    const usageOnly = ` if ${JSON.stringify(onUsageKeys)}`;
    expect(onHistory.sort()).toEqual(
      [
        'default dynamodb:Query',
        'publish-api dynamodb:PutItem,dynamodb:GetItem,dynamodb:DeleteItem',
        `publish-api dynamodb:UpdateItem${usageOnly}`,
        `publish-api dynamodb:Query${usageOnly}`,
        `connect dynamodb:UpdateItem${usageOnly}`,
        `disconnect dynamodb:UpdateItem${usageOnly}`,
        'publisher dynamodb:BatchWriteItem',
        'publisher dynamodb:PutItem,dynamodb:GetItem,dynamodb:DeleteItem',
        'publisher dynamodb:UpdateItem',
      ].sort(),
    );
  });

  test('the usage key pattern is the Rust side\'s (services/aws/src/dynamo/usage.rs, services/core/src/usage/)', () => {
    // Every usage item's PK is the prefix + tenant or `*` (`storage_key`), and no other key starts with it.
    const rust = fs.readFileSync(path.join(__dirname, '..', '..', 'services', 'core', 'src', 'usage', 'mod.rs'), 'utf8');
    const prefix = /fn storage_key\([^)]*\) -> String \{\s*format!\("([^"{]+)\{\}", group\(tenant\)\)/.exec(rust)?.[1];
    expect(prefix).toBe('U#');
    expect(USAGE_KEY_PATTERN).toBe(`${prefix}*`);
  });

  test('authorizer: its own log group only', () => {
    expect(statementsOf('authorizer')).toEqual([logStatement('authorizer'), xrayStatement]);
  });

  test('API Gateway may invoke each function only from its own API and route', () => {
    const permissions = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Permission');
    const byFunction = permissions.map((p) => {
      expect(p.Properties.Principal).toBe('apigateway.amazonaws.com');
      expect(p.Properties.Action).toBe('lambda:InvokeFunction');
      const parts = p.Properties.SourceArn['Fn::Join'][1];
      const api = parts.find((x: any) => x.Ref && !x.Ref.startsWith('AWS::')).Ref;
      const tail = parts.slice(parts.findIndex((x: any) => x.Ref === api) + 1).map((x: any) => (typeof x === 'string' ? x : `<${x.Ref}>`)).join('');
      return `${p.Properties.FunctionName['Fn::GetAtt'][0]} ${api} ${tail.replace(/<WebSocketApiJwtAuthorizer[0-9A-F]+>/, '<authorizer>')}`;
    });
    expect(byFunction.sort()).toEqual(
      [
        `${fnId('authorizer')} ${wsApiId()} /authorizers/<authorizer>`,
        `${fnId('connect')} ${wsApiId()} /*$connect`,
        `${fnId('disconnect')} ${wsApiId()} /*$disconnect`,
        `${fnId('default')} ${wsApiId()} /*$default`,
        `${fnId('publish-api')} ${logicalId(built.stack.httpApi)} /*/*/v1/messages`,
        `${fnId('publish-api')} ${logicalId(built.stack.httpApi)} /*/*/v1/messages/{id}`,
        `${fnId('publish-api')} ${logicalId(built.stack.httpApi)} /*/*/v1/tenants/{tenant}/presence`,
        `${fnId('publish-api')} ${logicalId(built.stack.httpApi)} /*/*/v1/tenants/{tenant}/users/{user}/presence`,
        `${fnId('publish-api')} ${logicalId(built.stack.httpApi)} /*/*/v1/tenants/{tenant}/usage`,
      ].sort(),
    );
  });

  test('no wildcard action or resource anywhere, except the @connections/<id> segment and X-Ray (no resource-level permissions)', () => {
    const literals: string[] = [];
    const collect = (v: unknown): void => {
      if (typeof v === 'string') literals.push(v);
      else if (Array.isArray(v)) v.forEach(collect);
      else if (v && typeof v === 'object') Object.values(v).forEach(collect);
    };
    for (const r of Object.values(resources)) {
      if (r.Type !== 'AWS::IAM::Policy' && r.Type !== 'AWS::IAM::Role') continue;
      const docs = r.Type === 'AWS::IAM::Policy' ? [r.Properties.PolicyDocument] : (r.Properties.Policies ?? []).map((p: any) => p.PolicyDocument);
      for (const doc of docs) {
        for (const s of doc.Statement) {
          expect(s.Effect).toBe('Allow');
          expect(s.NotAction).toBeUndefined();
          expect(s.NotResource).toBeUndefined();
          collect(s.Action);
          collect(s.Resource);
        }
      }
      expect(r.Properties.ManagedPolicyArns).toBeUndefined();
    }
    const withStar = literals.filter((l) => l.includes('*'));
    // publisher (fan-out) and default (resume) post to connections; the publisher also
    // closes those whose token expired.
    expect(withStar.filter((l) => l !== '*').sort()).toEqual([
      '/main/DELETE/@connections/*',
      '/main/POST/@connections/*',
      '/main/POST/@connections/*',
    ]);
    expect(withStar.filter((l) => l === '*')).toHaveLength(6); // the X-Ray statement of each function
    for (const r of Object.values(resources)) {
      if (r.Type !== 'AWS::IAM::Policy') continue;
      for (const st of r.Properties.PolicyDocument.Statement) {
        if (st.Resource === '*') expect(st.Action).toEqual(['xray:PutTraceSegments', 'xray:PutTelemetryRecords']);
      }
    }
  });
});

describe('alarms (all to one SNS topic)', () => {
  const alarms = () => Object.entries(resources).filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm');
  const topicId = () => Object.entries(resources).find(([, r]) => r.Type === 'AWS::SNS::Topic')![0];
  const alarmOn = (metricName: string, extra: Record<string, unknown> = {}) =>
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: metricName, AlarmActions: [{ Ref: topicId() }], ...extra });

  test('the sixteen alarms, each notifying the stack topic', () => {
    expect(alarms()).toHaveLength(16);
    for (const [, a] of alarms()) {
      expect(a.Properties.AlarmActions).toEqual([{ Ref: topicId() }]);
      expect(a.Properties.TreatMissingData).toBe('notBreaching');
    }
  });

  test('the topic refuses non-TLS publishers and is an output', () => {
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topicId() }],
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
      },
    });
    expect(template.toJSON().Outputs.AlarmTopicArn.Value).toEqual({ Ref: topicId() });
  });

  test('DLQ depth > 0', () => {
    alarmOn('ApproximateNumberOfMessagesVisible', {
      Namespace: 'AWS/SQS',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlqId(), 'QueueName'] } }],
      Statistic: 'Maximum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });

  test('oldest message on the queue older than 300 s in 3 of 5 minutes', () => {
    alarmOn('ApproximateAgeOfOldestMessage', {
      Namespace: 'AWS/SQS',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId(), 'QueueName'] } }],
      Statistic: 'Maximum',
      Period: 60,
      Threshold: 300,
      EvaluationPeriods: 5,
      DatapointsToAlarm: 3,
    });
    const t = Template.fromStack(build({ queueAgeAlarmSecs: '120' }).stack);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ApproximateAgeOfOldestMessage', Threshold: 120 });
  });

  test.each(['connect', 'disconnect', 'default', 'publisher', 'publish-api'] as FunctionName[])('%s errors > 0', (name) => {
    alarmOn('Errors', {
      Namespace: 'AWS/Lambda',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnId(name) } }],
      Statistic: 'Sum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });

  test('no alarm on the authorizer Errors metric (every rejected token is one)', () => {
    const onAuthorizer = alarms().filter(([, a]) => JSON.stringify(a.Properties.Dimensions ?? []).includes(fnId('authorizer')));
    // Only its throttles (lib/connect-alarms.ts); never Errors, in any form (metric math included).
    expect(onAuthorizer.map(([, a]) => a.Properties.MetricName)).toEqual(['Throttles']);
    for (const [, a] of alarms()) expect(a.Properties.Metrics).toBeUndefined();
  });

  test('key-source failures: a metric filter on every verifier, alarmed on', () => {
    for (const name of ['authorizer', 'default', 'publish-api'] as const) {
      const logGroupId = resources[fnId(name)].Properties.LoggingConfig.LogGroup.Ref;
      template.hasResourceProperties('AWS::Logs::MetricFilter', {
        LogGroupName: { Ref: logGroupId },
        FilterPattern: AUTH_FAILURE_MESSAGES[name].map((m) => `($.fields.message = "${m}")`).join(' || ').replace(/^/, '{ ').replace(/$/, ' }'),
        MetricTransformations: [{ MetricName: 'AuthConfigFailures', MetricNamespace: 'Switchboard/Switchboard', MetricValue: '1' }],
      });
    }
    alarmOn('AuthConfigFailures', { Namespace: 'Switchboard/Switchboard', Statistic: 'Sum', Threshold: 0, Period: 300 });
  });

  test('the filtered messages are the ones the Rust functions log', () => {
    const repo = path.resolve(__dirname, '..', '..');
    const read = (f: string) => fs.readFileSync(path.join(repo, f), 'utf8');
    const jwks = read('services/core/src/auth/jwks.rs');
    // Start-up failures: each main builds through `telemetry::start("<function>", ...)`, whose
    // `init_failed` logs "<function> configuration invalid".
    expect(read('services/lambdas/src/telemetry.rs')).toContain('"{function} configuration invalid"');
    for (const [fn, messages] of Object.entries(AUTH_FAILURE_MESSAGES)) {
      const main = read(`services/lambdas/src/bin/${fn}.rs`);
      for (const m of messages) {
        if (m === `${fn} configuration invalid`) expect(main).toContain(`start("${fn}"`);
        else expect(jwks).toContain(`"${m}"`);
      }
    }
  });

  test('publisher duration (max) above 80% of its timeout', () => {
    alarmOn('Duration', {
      Namespace: 'AWS/Lambda',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnId('publisher') } }],
      Statistic: 'Maximum',
      Threshold: 48000,
    });
    const t = Template.fromStack(build({ publisherTimeoutSecs: '120' }).stack);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Duration', Threshold: 96000 });
  });

  test('publisher throttles: Lambda throttles, and 429s from PostToConnection (EMF, all target types)', () => {
    alarmOn('Throttles', {
      Namespace: 'AWS/Lambda',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnId('publisher') } }],
      Statistic: 'Sum',
      Threshold: 0,
    });
    alarmOn('Throttled', {
      Namespace: 'Switchboard/Switchboard',
      Dimensions: Match.absent(),
      Statistic: 'Sum',
      Period: 60,
      Threshold: 0,
      EvaluationPeriods: 5,
      DatapointsToAlarm: 3,
    });
  });

  test('publish API 5xx > 0', () => {
    alarmOn('5xx', {
      Namespace: 'AWS/ApiGateway',
      Dimensions: [{ Name: 'ApiId', Value: { Ref: logicalId(built.stack.httpApi) } }],
      Statistic: 'Sum',
      Threshold: 0,
    });
  });

  test('an existing topic given by context replaces the stack topic; an e-mail can subscribe to the stack topic', () => {
    const topic = 'arn:aws:sns:eu-west-1:123456789012:ops';
    const json = Template.fromStack(build({ alarmTopicArn: topic }).stack).toJSON();
    const all = Object.values(json.Resources as Resources);
    expect(all.filter((r) => r.Type === 'AWS::SNS::Topic')).toHaveLength(0);
    const found = all.filter((r) => r.Type === 'AWS::CloudWatch::Alarm');
    expect(found).toHaveLength(16);
    for (const a of found) expect(a.Properties.AlarmActions).toEqual([topic]);
    expect(json.Outputs.AlarmTopicArn.Value).toBe(topic);

    const t = Template.fromStack(build({ alarmEmail: 'ops@example.com' }).stack);
    t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });
});

describe('dashboard', () => {
  const body = () => {
    const d = Object.values(resources).find((r) => r.Type === 'AWS::CloudWatch::Dashboard')!;
    return JSON.stringify(d.Properties.DashboardBody);
  };

  test('graphs the EMF metrics, the queues, both APIs and the publisher', () => {
    const b = body();
    for (const metric of ['Delivered', 'Gone', 'Failed', 'Throttled', 'Retries', 'FanoutDuration', 'Requests', 'ServerErrors']) {
      expect(b).toContain(`\\"Switchboard/Switchboard\\",\\"${metric}\\"`);
    }
    for (const t of ['users', 'tenant', 'connections', 'broadcast']) expect(b).toContain(`\\"Target\\",\\"${t}\\"`);
    for (const metric of ['ApproximateNumberOfMessagesVisible', 'ApproximateAgeOfOldestMessage', 'ConnectCount', 'MessageCount', 'ExecutionError', '5xx', 'ConcurrentExecutions']) {
      expect(b).toContain(`\\"${metric}\\"`);
    }
    expect(b).toContain('alarm');
    expect(template.toJSON().Outputs.DashboardName.Value).toEqual({ Ref: Object.entries(resources).find(([, r]) => r.Type === 'AWS::CloudWatch::Dashboard')![0] });
  });
});

describe('bootstrap architecture (ELF header)', () => {
  test('a zip built for arm64 refuses an x86_64 synth, and the reverse', () => {
    const arm = fakeLambdaDir('arm64');
    const app = new cdk.App({ context: { lambdaDir: arm } });
    expect(() => new SwitchboardStack(app, 'S', { config: configFromContext(app.node) })).toThrow(
      /authorizer\/bootstrap\.zip holds a bootstrap built for arm64, but the stack deploys x86_64 functions.*-c architecture=arm64/,
    );
    const x86 = fakeLambdaDir('x86_64');
    const app2 = new cdk.App({ context: { lambdaDir: x86, architecture: 'arm64' } });
    expect(() => new SwitchboardStack(app2, 'S', { config: configFromContext(app2.node) })).toThrow(/holds a bootstrap built for x86_64, but the stack deploys arm64.*--arm64/);
  });

  test('one wrong zip among six is enough', () => {
    const dir = fakeLambdaDir('x86_64');
    fs.writeFileSync(path.join(dir, 'publisher', 'bootstrap.zip'), zipOf('bootstrap', elfHeader('arm64')));
    const app = new cdk.App({ context: { lambdaDir: dir } });
    expect(() => new SwitchboardStack(app, 'S', { config: configFromContext(app.node) })).toThrow(/publisher\/bootstrap\.zip holds a bootstrap built for arm64/);
  });

  test('reads stored and deflated entries, and a real ELF binary (the first MiB of this Node executable)', () => {
    expect(elfArchitecture(zipEntryPrefix(zipOf('bootstrap', elfHeader('arm64'), false), 'bootstrap', 'z'), 'z')).toBe('arm64');
    expect(elfArchitecture(zipEntryPrefix(zipOf('bootstrap', elfHeader('x86_64'), true), 'bootstrap', 'z'), 'z')).toBe('x86_64');
    const fd = fs.openSync(process.execPath, 'r');
    const node = Buffer.alloc(1024 * 1024);
    fs.readSync(fd, node, 0, node.length, 0);
    fs.closeSync(fd);
    const expected = ({ x64: 'x86_64', arm64: 'arm64' } as Record<string, string>)[process.arch];
    if (process.platform === 'linux' && expected) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-elf-'));
      const zip = path.join(dir, 'bootstrap.zip');
      fs.writeFileSync(zip, zipOf('bootstrap', node));
      expect(bootstrapArchitecture(zip)).toBe(expected);
    }
  });

  test('refuses what is not a Linux x86_64/arm64 executable, naming the problem', () => {
    const check = (zip: Buffer) => () => elfArchitecture(zipEntryPrefix(zip, 'bootstrap', 'z'), 'z');
    expect(check(zipOf('bootstrap', Buffer.from('#!/bin/sh\necho hi\n')))).toThrow(/not an ELF executable/);
    expect(check(zipOf('bootstrap', elfHeader(40)))).toThrow(/ELF machine 40/); // 32-bit ARM
    const elf32 = elfHeader('x86_64');
    elf32[4] = 1;
    expect(check(zipOf('bootstrap', elf32))).toThrow(/64-bit little-endian/);
    expect(check(zipOf('main', elfHeader('x86_64')))).toThrow(/no 'bootstrap' entry/);
    expect(() => zipEntryPrefix(Buffer.from('not a zip at all, just text'), 'bootstrap', 'z')).toThrow(/not a zip archive/);
  });
});

describe('cdk-nag (AwsSolutions)', () => {
  test('no unacknowledged error or warning', () => {
    const report = validationReport(built.assembly.directory);
    expect(report.conclusions).toEqual(['AwsSolutions: success']);
    expect(report.violations).toEqual([]);
    // The acknowledged findings, as the report lists them (see the next test for where and why).
    expect(report.acknowledged.map((v) => `${v.acknowledgedAt} ${v.ruleName.replace(/<WebSocketApi[0-9A-F]+>/, '<WebSocketApi>')}`).sort()).toEqual(
      [
        'Switchboard/PublishHttpApi/POST--v1--messages/Resource AwsSolutions-APIG4',
        'Switchboard/PublishHttpApi/GET--v1--messages--{id}/Resource AwsSolutions-APIG4',
        'Switchboard/PublishHttpApi/GET--v1--tenants--{tenant}--presence/Resource AwsSolutions-APIG4',
        'Switchboard/PublishHttpApi/GET--v1--tenants--{tenant}--users--{user}--presence/Resource AwsSolutions-APIG4',
        'Switchboard/PublishHttpApi/GET--v1--tenants--{tenant}--usage/Resource AwsSolutions-APIG4',
        'Switchboard/PublisherRole AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<WebSocketApi>/main/POST/@connections/*]',
        'Switchboard/PublisherRole AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<WebSocketApi>/main/DELETE/@connections/*]',
        'Switchboard/DefaultRole AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<WebSocketApi>/main/POST/@connections/*]',
        'Switchboard/History AwsSolutions-DDB3',
        'Switchboard/WebSocketApi/$default-Route/Resource AwsSolutions-APIG4',
        'Switchboard/WebSocketApi/$disconnect-Route/Resource AwsSolutions-APIG4',
        'Switchboard/MainStage AwsSolutions-APIG1',
        ...FUNCTION_NAMES.map((n) => `Switchboard/${pascalName(n)}Role AwsSolutions-IAM5[Resource::*]`),
      ].sort(),
    );
  });

  test('also with the logging role and WebSocket access logs on (then APIG1 needs no acknowledgment)', () => {
    const report = validationReport(build({ createApiGatewayLogsRole: 'true', webSocketAccessLogs: 'true' }).assembly.directory);
    expect(report.violations).toEqual([]);
    const rules = report.acknowledged.map((v) => v.ruleName);
    expect(rules).toContain(
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
    );
    expect(rules).not.toContain('AwsSolutions-APIG1');
  });

  test('also with tracing off (then no X-Ray acknowledgment) and an existing alarm topic', () => {
    const report = validationReport(build({ tracing: 'false', alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops' }).assembly.directory);
    expect(report.violations).toEqual([]);
    const rules = report.acknowledged.map((v) => v.ruleName);
    expect(rules).not.toContain('AwsSolutions-IAM5[Resource::*]');
  });

  test('every acknowledgment is one of the justified few', () => {
    const acks: Array<{ path: string; id: string; reason: string }> = [];
    for (const c of built.stack.node.findAll()) {
      for (const entry of c.node.metadata) {
        if (entry.type !== cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) acks.push({ path: c.node.path, id, reason });
      }
    }
    for (const a of acks) expect(a.reason.length).toBeGreaterThan(40);
    const summary = acks.map((a) => `${a.path.replace(/^Switchboard\//, '')} ${a.id.replace(/<WebSocketApi[0-9A-F]+>/, '<WebSocketApi>')}`).sort();
    expect(summary).toEqual(
      [
        'PublishHttpApi/POST--v1--messages/Resource AwsSolutions::AwsSolutions-APIG4',
        'PublishHttpApi/GET--v1--messages--{id}/Resource AwsSolutions::AwsSolutions-APIG4',
        'PublishHttpApi/GET--v1--tenants--{tenant}--presence/Resource AwsSolutions::AwsSolutions-APIG4',
        'PublishHttpApi/GET--v1--tenants--{tenant}--users--{user}--presence/Resource AwsSolutions::AwsSolutions-APIG4',
        'PublishHttpApi/GET--v1--tenants--{tenant}--usage/Resource AwsSolutions::AwsSolutions-APIG4',
        'PublisherRole AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<WebSocketApi>/main/POST/@connections/*]',
        'PublisherRole AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<WebSocketApi>/main/DELETE/@connections/*]',
        'DefaultRole AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<WebSocketApi>/main/POST/@connections/*]',
        'History AwsSolutions::AwsSolutions-DDB3',
        'WebSocketApi/$default-Route/Resource AwsSolutions::AwsSolutions-APIG4',
        'WebSocketApi/$disconnect-Route/Resource AwsSolutions::AwsSolutions-APIG4',
        'MainStage AwsSolutions::AwsSolutions-APIG1',
        ...FUNCTION_NAMES.map((n) => `${pascalName(n)}Role AwsSolutions::AwsSolutions-IAM5[Resource::*]`),
      ].sort(),
    );
  });

  test('the checks do run: an unencrypted queue without DLQ or TLS fails synthesis', () => {
    const app = new cdk.App({ outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-nag-')) });
    const stack = new cdk.Stack(app, 'Bad');
    new sqs.Queue(stack, 'Plain', { encryption: sqs.QueueEncryption.UNENCRYPTED });
    cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS2[\s\S]*AwsSolutions-SQS3[\s\S]*AwsSolutions-SQS4/);
  });
});
