// What `cdk synth` must produce (docs/design.md: AWS deployment), asserted on the synthesized template.
import * as cdk from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { configFromContext, FUNCTION_NAMES, FunctionName } from '../lib/config';
import { AUTHORIZER_FAILURE_PATTERNS } from '../lib/connect-alarms';
import { SwitchboardStack } from '../lib/switchboard-stack';
import { build, Built, fakeLambdaDir, validationReport } from './helpers';
import { dlqId, fnId, historyId, logicalId, queueId, Resources, tableId, underTest, wsApiId } from './stack-fixture';

let built: Built;
let template: Template;
let resources: Resources;

beforeAll(() => ({ built, template, resources } = underTest()));

describe('resources', () => {
  test('exactly the resources docs/design.md: AWS deployment (with History and resume, Receipts, Usage) asks for', () => {
    const expected: Record<string, number> = {
      'AWS::DynamoDB::Table': 2, // roster, history
      // the queue and its DLQ; events (lib/events.ts): the offline checks, their DLQ, the stream's failures
      'AWS::SQS::Queue': 5,
      'AWS::SQS::QueuePolicy': 5,
      'AWS::Lambda::Function': 7,
      'AWS::Lambda::EventSourceMapping': 3, // the queue → publisher; the roster's stream and the events queue → events
      'AWS::IAM::Role': 7,
      'AWS::IAM::Policy': 7,
      'AWS::Logs::LogGroup': 8, // one per function, the HTTP API's access log (WebSocket access logs are opt-in)
      'AWS::ApiGatewayV2::Api': 2,
      // $connect, $disconnect, $default, ping; POST /v1/messages, GET /v1/messages/{id}, 3 × GET …/presence,
      // GET /v1/tenants, GET …/usage, POST /v1/push/subscriptions, DELETE /v1/push/subscriptions/{id},
      // GET /v1/push/vapid-public-key
      'AWS::ApiGatewayV2::Route': 14,
      'AWS::ApiGatewayV2::Integration': 5, // 3 WebSocket Lambda proxies, ping's MOCK (lib/keepalive.ts), the HTTP API's
      'AWS::ApiGatewayV2::IntegrationResponse': 1, // ping's {"type":"pong"}
      'AWS::ApiGatewayV2::Authorizer': 1,
      'AWS::ApiGatewayV2::Stage': 2,
      'AWS::ApiGatewayV2::RouteResponse': 2, // $default's and ping's
      'AWS::Lambda::Permission': 14, // one per Lambda WebSocket route and authorizer, one per HTTP route (none for ping)
      'AWS::CloudWatch::Alarm': 21,
      'AWS::Logs::MetricFilter': 3 + AUTHORIZER_FAILURE_PATTERNS.length, // key-source failures; authorizer timeouts/crashes
      'AWS::SNS::Topic': 1,
      'AWS::SNS::TopicPolicy': 1,
      'AWS::CloudWatch::Dashboard': 1,
      'AWS::Events::EventBus': 1, // events (docs/design.md: Events): the bus and its archive; no webhook without context
      'AWS::Events::Archive': 1,
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

  test('timeouts: 10 s for the WebSocket hooks, 28 s for default (under the 29 s integration timeout), 15 s publish-api, 30 s events', () => {
    const timeout = (n: FunctionName) => resources[fnId(n)].Properties.Timeout;
    expect(FUNCTION_NAMES.map((n) => [n, timeout(n)])).toEqual([
      ['authorizer', 10],
      ['connect', 10],
      ['disconnect', 10],
      ['default', 28],
      ['publisher', 60],
      ['publish-api', 15],
      ['events', 30],
    ]);
  });

  test('every function has its own asset and its own role', () => {
    const keys = FUNCTION_NAMES.map((n) => resources[fnId(n)].Properties.Code.S3Key);
    const roles = FUNCTION_NAMES.map((n) => resources[fnId(n)].Properties.Role['Fn::GetAtt'][0]);
    expect(new Set(keys).size).toBe(7);
    expect(new Set(roles).size).toBe(7);
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
    expect(fns).toHaveLength(7);
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
      /publisher\/bootstrap\.zip.*cargo lambda build --profile lambda-release --output-format zip/,
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
      EVENT_BUS_NAME: { Ref: logicalId(built.stack.events.bus) },
      ...metrics,
    });
    // docs/design.md: Events; lib/events.ts.
    expect(env('events')).toEqual({
      ...log,
      ROSTER_TABLE: { Ref: tableId() },
      HISTORY_TABLE: { Ref: historyId() },
      EVENT_BUS_NAME: { Ref: logicalId(built.stack.events.bus) },
      EVENTS_QUEUE_URL: { Ref: logicalId(built.stack.events.queue) },
      EVENTS_OFFLINE_DELAY_SECS: '3',
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
