// Alarms, dashboard and the cdk-nag checks.
import * as cdk from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FUNCTION_NAMES, FunctionName } from '../lib/config';
import { AUTH_FAILURE_MESSAGES } from '../lib/switchboard-stack';
import { build, Built, validationReport } from './helpers';
import { dlqId, fnId, logicalId, pascalName, queueId, Resources, underTest } from './stack-fixture';

let built: Built;
let template: Template;
let resources: Resources;

beforeAll(() => ({ built, template, resources } = underTest()));

describe('alarms (all to one SNS topic)', () => {
  const alarms = () => Object.entries(resources).filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm');
  const topicId = () => Object.entries(resources).find(([, r]) => r.Type === 'AWS::SNS::Topic')![0];
  const alarmOn = (metricName: string, extra: Record<string, unknown> = {}) =>
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: metricName, AlarmActions: [{ Ref: topicId() }], ...extra });

  test('the twenty-one alarms (five about events, lib/events.ts), each notifying the stack topic', () => {
    expect(alarms()).toHaveLength(21);
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

  test.each(['connect', 'disconnect', 'default', 'publisher', 'publish-api', 'events'] as FunctionName[])('%s errors > 0', (name) => {
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
    expect(found).toHaveLength(21);
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
        'Switchboard/PublishHttpApi/GET--v1--tenants/Resource AwsSolutions-APIG4',
        'Switchboard/PublishHttpApi/GET--v1--tenants--{tenant}--presence/Resource AwsSolutions-APIG4',
        'Switchboard/PublishHttpApi/GET--v1--tenants--{tenant}--presence--summary/Resource AwsSolutions-APIG4',
        'Switchboard/PublishHttpApi/GET--v1--tenants--{tenant}--users--{user}--presence/Resource AwsSolutions-APIG4',
        'Switchboard/PublishHttpApi/GET--v1--tenants--{tenant}--usage/Resource AwsSolutions-APIG4',
        'Switchboard/PublishHttpApi/POST--v1--push--subscriptions/Resource AwsSolutions-APIG4',
        'Switchboard/PublishHttpApi/DELETE--v1--push--subscriptions--{id}/Resource AwsSolutions-APIG4',
        'Switchboard/PublishHttpApi/GET--v1--push--vapid-public-key/Resource AwsSolutions-APIG4',
        'Switchboard/PublisherRole AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<WebSocketApi>/main/POST/@connections/*]',
        'Switchboard/PublisherRole AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<WebSocketApi>/main/DELETE/@connections/*]',
        'Switchboard/DefaultRole AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<WebSocketApi>/main/POST/@connections/*]',
        'Switchboard/History AwsSolutions-DDB3',
        'Switchboard/WebSocketApi/$default-Route/Resource AwsSolutions-APIG4',
        'Switchboard/WebSocketApi/$disconnect-Route/Resource AwsSolutions-APIG4',
        'Switchboard/WebSocketApi/ping-Route/Resource AwsSolutions-APIG4',
        'Switchboard/MainStage AwsSolutions-APIG1',
        'Switchboard/EventsStreamFailures AwsSolutions-SQS3',
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
        'PublishHttpApi/GET--v1--tenants/Resource AwsSolutions::AwsSolutions-APIG4',
        'PublishHttpApi/GET--v1--tenants--{tenant}--presence/Resource AwsSolutions::AwsSolutions-APIG4',
        'PublishHttpApi/GET--v1--tenants--{tenant}--presence--summary/Resource AwsSolutions::AwsSolutions-APIG4',
        'PublishHttpApi/GET--v1--tenants--{tenant}--users--{user}--presence/Resource AwsSolutions::AwsSolutions-APIG4',
        'PublishHttpApi/GET--v1--tenants--{tenant}--usage/Resource AwsSolutions::AwsSolutions-APIG4',
        'PublishHttpApi/POST--v1--push--subscriptions/Resource AwsSolutions::AwsSolutions-APIG4',
        'PublishHttpApi/DELETE--v1--push--subscriptions--{id}/Resource AwsSolutions::AwsSolutions-APIG4',
        'PublishHttpApi/GET--v1--push--vapid-public-key/Resource AwsSolutions::AwsSolutions-APIG4',
        'PublisherRole AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<WebSocketApi>/main/POST/@connections/*]',
        'PublisherRole AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<WebSocketApi>/main/DELETE/@connections/*]',
        'DefaultRole AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<WebSocketApi>/main/POST/@connections/*]',
        'History AwsSolutions::AwsSolutions-DDB3',
        'WebSocketApi/$default-Route/Resource AwsSolutions::AwsSolutions-APIG4',
        'WebSocketApi/$disconnect-Route/Resource AwsSolutions::AwsSolutions-APIG4',
        'WebSocketApi/ping-Route/Resource AwsSolutions::AwsSolutions-APIG4',
        'MainStage AwsSolutions::AwsSolutions-APIG1',
        'EventsStreamFailures AwsSolutions::AwsSolutions-SQS3',
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
