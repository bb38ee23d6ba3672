// Events on AWS (docs/design.md: Events; lib/events.ts): the roster's stream feeding the events
// function, the delayed offline checks on their queue, the EventBridge bus and archive, the
// optional webhook (API destination + rule, only with context), least-privilege grants, alarms.
import * as cdk from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Construct } from 'constructs';
import * as fs from 'fs';
import * as path from 'path';
import { FUNCTION_NAMES } from '../lib/config';
import { ONLINE_KEY_PATTERN } from '../lib/names';
import { build, Built, validationReport } from './helpers';
import { fnId, historyId, logicalId, logStatement, Resources, statementsOf, tableId, underTest, xrayStatement } from './stack-fixture';

let built: Built;
let resources: Resources;

beforeAll(() => ({ built, resources } = underTest()));

const ev = () => built.stack.events;
const arn = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
const ofType = (res: Resources, type: string) => Object.entries(res).filter(([, r]) => r.Type === type);
const mappingsOf = (res: Resources, functionId: string) =>
  ofType(res, 'AWS::Lambda::EventSourceMapping')
    .map(([, r]) => r.Properties)
    .filter((p) => p.FunctionName.Ref === functionId);

const WEBHOOK = { eventsWebhookUrl: 'https://hooks.example.com/switchboard', eventsWebhookApiKeySecret: 'switchboard/webhook' };

describe("the roster's stream", () => {
  test('NEW_AND_OLD_IMAGES on the roster table (the history table has none)', () => {
    expect(resources[tableId()].Properties.StreamSpecification).toEqual({ StreamViewType: 'NEW_AND_OLD_IMAGES' });
    expect(resources[historyId()].Properties.StreamSpecification).toBeUndefined();
  });

  test('its mapping: LATEST, batches of 100, partial batch responses, bisect, 10 retries, 1 h max age, failures to an SQS queue, INSERT and REMOVE only', () => {
    const stream = mappingsOf(resources, fnId('events')).find((p) => p.EventSourceArn['Fn::GetAtt']?.[1] === 'StreamArn');
    expect(stream).toEqual({
      FunctionName: { Ref: fnId('events') },
      EventSourceArn: { 'Fn::GetAtt': [tableId(), 'StreamArn'] },
      StartingPosition: 'LATEST',
      BatchSize: 100,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 10,
      MaximumRecordAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: arn(logicalId(ev().streamFailures)) } },
      FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ eventName: ['INSERT', 'REMOVE'] }) }] },
    });
    // The failure queue: SSE-SQS, kept 14 days, TLS only.
    expect(resources[logicalId(ev().streamFailures)].Properties).toEqual({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 86400 });
  });
});

describe('the events function', () => {
  test('its own zip, role and log group (JSON logs like the others); 30 s, 256 MB; the settings of docs/design.md: Events', () => {
    const p = resources[fnId('events')].Properties;
    expect(p).toMatchObject({ Runtime: 'provided.al2023', Handler: 'bootstrap', Timeout: 30, MemorySize: 256 });
    expect(p.Environment.Variables).toEqual({
      RUST_LOG: { Ref: 'LogLevel' },
      ROSTER_TABLE: { Ref: tableId() },
      HISTORY_TABLE: { Ref: historyId() },
      EVENT_BUS_NAME: { Ref: logicalId(ev().bus) },
      EVENTS_QUEUE_URL: { Ref: logicalId(ev().queue) },
      EVENTS_OFFLINE_DELAY_SECS: '3',
      METRICS_NAMESPACE: 'Switchboard/Switchboard',
    });
    expect(FUNCTION_NAMES).toContain('events');
  });

  test('eventsOfflineDelaySecs: 0–900 (SQS DelaySeconds), checked at synth naming the key', () => {
    for (const [value, want] of [['0', '0'], ['900', '900']]) {
      const b = build({ eventsOfflineDelaySecs: value });
      const t = Template.fromStack(b.stack).toJSON();
      const id = b.stack.resolve((b.stack.functions.events.node.defaultChild as any).logicalId);
      expect(t.Resources[id].Properties.Environment.Variables.EVENTS_OFFLINE_DELAY_SECS).toBe(want);
    }
    for (const bad of ['901', '-1', '2.5', 'soon']) {
      expect(() => build({ eventsOfflineDelaySecs: bad })).toThrow(/context eventsOfflineDelaySecs: expected an integer in \[0, 900\]/);
    }
  });

  test('the Rust bounds of the offline delay are the ones synth checks', () => {
    const rust = fs.readFileSync(path.join(__dirname, '..', '..', 'services', 'core', 'src', 'events', 'presence.rs'), 'utf8');
    expect(/pub const DEFAULT_OFFLINE_DELAY_SECS: u64 = (\d+);/.exec(rust)?.[1]).toBe('3');
    expect(/pub const MAX_OFFLINE_DELAY_SECS: u64 = (\d+);/.exec(rust)?.[1]).toBe('900');
  });
});

describe('the offline checks queue', () => {
  test('SSE-SQS, visibility 6× the function timeout, redrive to its DLQ after 5 receives, TLS only', () => {
    const timeout = resources[fnId('events')].Properties.Timeout;
    expect(resources[logicalId(ev().queue)].Properties).toEqual({
      SqsManagedSseEnabled: true,
      VisibilityTimeout: 6 * timeout,
      MessageRetentionPeriod: 4 * 86400,
      RedrivePolicy: { deadLetterTargetArn: arn(logicalId(ev().deadLetterQueue)), maxReceiveCount: 5 },
    });
    expect(resources[logicalId(ev().deadLetterQueue)].Properties).toEqual({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 86400 });
    for (const q of [ev().queue, ev().deadLetterQueue, ev().streamFailures]) {
      const policy = ofType(resources, 'AWS::SQS::QueuePolicy').find(([, r]) => r.Properties.Queues[0].Ref === logicalId(q))![1];
      expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
    }
  });

  test('its mapping: batches of 10, partial batch responses, maxConcurrency (eventsMaxConcurrency, default 5, 2–1000)', () => {
    const sqsMapping = (res: Resources, id: string) => mappingsOf(res, id).find((p) => p.EventSourceArn['Fn::GetAtt']?.[1] === 'Arn');
    expect(sqsMapping(resources, fnId('events'))).toEqual({
      FunctionName: { Ref: fnId('events') },
      EventSourceArn: arn(logicalId(ev().queue)),
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 5 },
    });
    const b = build({ eventsMaxConcurrency: '20' });
    const res = Template.fromStack(b.stack).toJSON().Resources;
    const id = b.stack.resolve((b.stack.functions.events.node.defaultChild as any).logicalId);
    expect(sqsMapping(res, id)!.ScalingConfig).toEqual({ MaximumConcurrency: 20 });
    expect(() => build({ eventsMaxConcurrency: '1' })).toThrow(/context eventsMaxConcurrency/);
  });
});

describe('the bus and its archive', () => {
  test('a custom bus named after the stack; the publisher puts message.settled on it', () => {
    expect(resources[logicalId(ev().bus)].Properties.Name).toBe('Switchboard-events');
    expect(resources[fnId('publisher')].Properties.Environment.Variables.EVENT_BUS_NAME).toEqual({ Ref: logicalId(ev().bus) });
    for (const name of FUNCTION_NAMES.filter((n) => n !== 'publisher' && n !== 'events')) {
      expect(resources[fnId(name)].Properties.Environment.Variables.EVENT_BUS_NAME).toBeUndefined();
    }
  });

  test('an archive of every switchboard event, kept eventsArchiveDays (default 30; 0 = indefinitely)', () => {
    expect(resources[logicalId(ev().archive)].Properties).toMatchObject({
      SourceArn: arn(logicalId(ev().bus)),
      EventPattern: { source: ['switchboard'] },
      RetentionDays: 30,
    });
    const retention = (days: string) => {
      const b = build({ eventsArchiveDays: days });
      const [, archive] = ofType(Template.fromStack(b.stack).toJSON().Resources, 'AWS::Events::Archive')[0];
      return archive.Properties.RetentionDays;
    };
    expect(retention('7')).toBe(7);
    expect(retention('0')).toBe(0); // EventBridge: 0 keeps the events indefinitely
    expect(() => build({ eventsArchiveDays: '-1' })).toThrow(/context eventsArchiveDays/);
  });

  test('outputs: the bus name and ARN, the archive ARN (rules, replays)', () => {
    const outputs = underTest().template.toJSON().Outputs;
    expect(outputs.EventBusName.Value).toEqual({ Ref: logicalId(ev().bus) });
    expect(outputs.EventBusArn.Value).toEqual(arn(logicalId(ev().bus)));
    expect(outputs.EventArchiveArn.Value).toEqual(arn(logicalId(ev().archive)));
  });
});

describe('grants (least privilege)', () => {
  test('events: online items only (O#…), roster items read (GetItem), the roster stream, its two queues, PutEvents on the bus', () => {
    expect(statementsOf('events')).toEqual([
      logStatement('events'),
      xrayStatement,
      {
        Effect: 'Allow',
        Action: ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueUrl', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
        Resource: arn(logicalId(ev().queue)),
      },
      {
        Sid: 'OnlineItems',
        Effect: 'Allow',
        Action: ['dynamodb:UpdateItem', 'dynamodb:GetItem'],
        Resource: arn(historyId()),
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['O#*'] } },
      },
      { Sid: 'RosterItems', Effect: 'Allow', Action: ['dynamodb:GetItem'], Resource: arn(tableId()) },
      {
        Sid: 'RosterStream',
        Effect: 'Allow',
        Action: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'],
        Resource: { 'Fn::GetAtt': [tableId(), 'StreamArn'] },
      },
      { Sid: 'StreamFailures', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: arn(logicalId(ev().streamFailures)) },
      { Sid: 'OfflineChecks', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: arn(logicalId(ev().queue)) },
      { Sid: 'PutEvents', Effect: 'Allow', Action: ['events:PutEvents'], Resource: arn(logicalId(ev().bus)) },
    ]);
  });

  test('the online key pattern is the Rust side\'s (services/aws/src/dynamo/online.rs)', () => {
    const rust = fs.readFileSync(path.join(__dirname, '..', '..', 'services', 'aws', 'src', 'dynamo', 'online.rs'), 'utf8');
    const prefix = /pub const ONLINE_PREFIX: &str = "([^"]+)";/.exec(rust)?.[1];
    expect(prefix).toBe('O#');
    expect(ONLINE_KEY_PATTERN).toBe(`${prefix}*`);
  });

  test('only the events function and the publisher may put events, on this bus only; nobody else reads the stream', () => {
    const holders = FUNCTION_NAMES.filter((n) => statementsOf(n).some((s) => s.Action.some((a: string) => a.startsWith('events:'))));
    expect(holders.sort()).toEqual(['events', 'publisher']);
    const readers = FUNCTION_NAMES.filter((n) => statementsOf(n).some((s) => s.Action.includes('dynamodb:GetRecords')));
    expect(readers).toEqual(['events']);
  });
});

describe('the optional webhook (eventsWebhookUrl)', () => {
  let hook: Built;
  let res: Resources;
  /** The logical id of an L2 construct of the webhook stack (its CloudFormation resource child). */
  const hid = (c: Construct) => hook.stack.resolve((c.node.children.find((x) => x instanceof cdk.CfnResource) as cdk.CfnResource).logicalId);
  beforeAll(() => {
    hook = build(WEBHOOK);
    res = Template.fromStack(hook.stack).toJSON().Resources;
  });

  test('absent without context', () => {
    for (const type of ['AWS::Events::Connection', 'AWS::Events::ApiDestination', 'AWS::Events::Rule']) expect(ofType(resources, type)).toEqual([]);
    expect(ev().webhook).toBeUndefined();
  });

  test('a connection with the API key as a Secrets Manager dynamic reference (never the key), an API destination POSTing to the URL', () => {
    const [, connection] = ofType(res, 'AWS::Events::Connection')[0];
    expect(connection.Properties).toMatchObject({
      AuthorizationType: 'API_KEY',
      AuthParameters: { ApiKeyAuthParameters: { ApiKeyName: 'x-api-key', ApiKeyValue: '{{resolve:secretsmanager:switchboard/webhook:SecretString:::}}' } },
    });
    const [, destination] = ofType(res, 'AWS::Events::ApiDestination')[0];
    expect(destination.Properties).toMatchObject({
      ConnectionArn: arn(hid(hook.stack.events.webhook!.connection)),
      HttpMethod: 'POST',
      InvocationEndpoint: 'https://hooks.example.com/switchboard',
    });
    const custom = build({ ...WEBHOOK, eventsWebhookApiKeyHeader: 'authorization' });
    const [, c2] = ofType(Template.fromStack(custom.stack).toJSON().Resources, 'AWS::Events::Connection')[0];
    expect(c2.Properties.AuthParameters.ApiKeyAuthParameters.ApiKeyName).toBe('authorization');
  });

  test('a rule on the bus matching source switchboard: the event JSON as body, 185 retries over 24 h, then a DLQ EventBridge may write to', () => {
    const [ruleId, rule] = ofType(res, 'AWS::Events::Rule')[0];
    const dlqId = hid(hook.stack.events.webhook!.deadLetterQueue);
    expect(rule.Properties).toMatchObject({ EventBusName: { Ref: hid(hook.stack.events.bus) }, EventPattern: { source: ['switchboard'] } });
    expect(rule.Properties.Targets).toEqual([
      expect.objectContaining({
        Arn: arn(hid(hook.stack.events.webhook!.destination)),
        InputPath: '$.detail',
        RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400 },
        DeadLetterConfig: { Arn: arn(dlqId) },
      }),
    ]);
    const [, policy] = ofType(res, 'AWS::SQS::QueuePolicy').find(([, r]) => r.Properties.Queues[0].Ref === dlqId)!;
    expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
      expect.objectContaining({
        Effect: 'Allow',
        Action: 'sqs:SendMessage',
        Principal: { Service: 'events.amazonaws.com' },
        Condition: { ArnEquals: { 'aws:SourceArn': arn(ruleId) } },
      }),
    );
    // The rule's role may invoke this destination only.
    const rolePolicies = ofType(res, 'AWS::IAM::Policy').filter(([, r]) => JSON.stringify(r).includes('events:InvokeApiDestination'));
    expect(rolePolicies.map(([, r]) => r.Properties.PolicyDocument.Statement)).toEqual([
      [{ Action: 'events:InvokeApiDestination', Effect: 'Allow', Resource: arn(hid(hook.stack.events.webhook!.destination)) }],
    ]);
  });

  test('its DLQ alarms; cdk-nag finds nothing unacknowledged', () => {
    const alarms = ofType(res, 'AWS::CloudWatch::Alarm').map(([, r]) => r.Properties);
    expect(alarms).toHaveLength(22);
    expect(alarms).toContainEqual(
      expect.objectContaining({
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [hid(hook.stack.events.webhook!.deadLetterQueue), 'QueueName'] } }],
        Threshold: 0,
      }),
    );
    const report = validationReport(hook.assembly.directory);
    expect(report.violations).toEqual([]);
    expect(report.conclusions).toEqual(['AwsSolutions: success']);
  });

  test('the URL alone: no auth (EventBridge needs some: a header naming the stack, not a secret)', () => {
    const b = build({ eventsWebhookUrl: WEBHOOK.eventsWebhookUrl });
    const [, connection] = ofType(Template.fromStack(b.stack).toJSON().Resources, 'AWS::Events::Connection')[0];
    expect(connection.Properties.AuthParameters).toEqual({ ApiKeyAuthParameters: { ApiKeyName: 'x-switchboard-stack', ApiKeyValue: 'Switchboard' } });
  });

  test('a half-set is refused at synth, naming the missing context key; so are an http URL and a key in the context', () => {
    expect(() => build({ eventsWebhookApiKeySecret: 'switchboard/webhook' })).toThrow(/^context eventsWebhookUrl: missing, but eventsWebhookApiKeySecret set/);
    expect(() => build({ eventsWebhookApiKeyHeader: 'x-api-key' })).toThrow(/^context eventsWebhookUrl: missing/);
    expect(() => build({ eventsWebhookUrl: WEBHOOK.eventsWebhookUrl, eventsWebhookApiKeyHeader: 'x-api-key' })).toThrow(
      /^context eventsWebhookApiKeySecret: missing, but eventsWebhookApiKeyHeader set/,
    );
    expect(() => build({ eventsWebhookUrl: 'http://hooks.example.com/x' })).toThrow(/^context eventsWebhookUrl: must be an https:\/\/ URL/);
    expect(() => build({ ...WEBHOOK, eventsWebhookApiKeyHeader: 'bad header' })).toThrow(/^context eventsWebhookApiKeyHeader/);
    expect(() => build({ ...WEBHOOK, eventsWebhookApiKey: 's3cret' })).toThrow(/^context eventsWebhookApiKey: .*Secrets Manager/);
  });
});

describe('alarms and dashboard', () => {
  const alarmsOf = (res: Resources) => ofType(res, 'AWS::CloudWatch::Alarm').map(([id, r]) => [id, r.Properties] as const);
  const find = (prefix: string) => alarmsOf(resources).find(([id]) => id.startsWith(prefix))?.[1];

  test('events function errors > 0 in 5 minutes', () => {
    expect(find('EventsErrors')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnId('events') } }],
      Statistic: 'Sum',
      Period: 300,
      Threshold: 0,
    });
  });

  test('EventsFailed (EMF, the namespace of the other EMF metrics, summed over every target) > 0', () => {
    const a = find('EventsFailed')!;
    expect(a).toMatchObject({ Namespace: 'Switchboard/Switchboard', MetricName: 'EventsFailed', Statistic: 'Sum', Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    expect(a.Dimensions).toBeUndefined();
  });

  test("the stream's iterator age above 60 s in 3 of 5 minutes", () => {
    expect(find('EventsStreamIteratorAge')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'IteratorAge',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnId('events') } }],
      Statistic: 'Maximum',
      Period: 60,
      Threshold: 60000,
      EvaluationPeriods: 5,
      DatapointsToAlarm: 3,
    });
  });

  test.each([
    ['EventsStreamFailuresDepth', () => ev().streamFailures],
    ['EventsDeadLetterQueueDepth', () => ev().deadLetterQueue],
  ])('%s: any message visible', (prefix, queue) => {
    expect(find(prefix)).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(queue()), 'QueueName'] } }],
      Threshold: 0,
    });
  });

  test('dashboard: events put and failed, the function and its iterator age, the events queues', () => {
    const [, d] = ofType(resources, 'AWS::CloudWatch::Dashboard')[0];
    const body = JSON.stringify(d.Properties.DashboardBody);
    for (const metric of ['Online', 'Offline', 'EventsPut', 'EventsFailed']) expect(body).toContain(`\\"Switchboard/Switchboard\\",\\"${metric}\\"`);
    for (const title of ['Events per minute', 'Events function', 'Events queues']) expect(body).toContain(title);
    expect(body).toContain('\\"IteratorAge\\"');
    expect(body).toContain('ApproximateNumberOfMessagesDelayed');
  });
});
