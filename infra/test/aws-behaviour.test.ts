// Template tests for the AWS rules of issue 20 ("On AWS as AWS really behaves"):
// recursive loop detection (the publisher alone may loop), the `default` timeout under the
// 29 s WebSocket integration timeout, and the alarms that fire when connecting is broken but
// never on an ordinary bad token.
import * as cdk from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_TIMEOUT_MAX_SECS, FUNCTION_NAMES, FunctionName } from '../lib/config';
import { AUTHORIZER_FAILURE_METRIC, AUTHORIZER_FAILURE_PATTERNS } from '../lib/connect-alarms';
import { STAGE_NAME } from '../lib/switchboard-stack';
import { build, Built } from './helpers';

type Resource = { Type: string; Properties?: any };

let built: Built;
let template: Template;
let resources: Record<string, Resource>;

beforeAll(() => {
  built = build();
  template = Template.fromStack(built.stack);
  resources = template.toJSON().Resources;
});

const logicalId = (c: { node: { defaultChild?: unknown } }) => built.stack.resolve((c.node.defaultChild as cdk.CfnElement).logicalId);
const fnId = (name: FunctionName) => logicalId(built.stack.functions[name]);
const topicId = () => Object.entries(resources).find(([, r]) => r.Type === 'AWS::SNS::Topic')![0];
const alarmsOn = (metricName: string) =>
  Object.entries(resources).filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm' && r.Properties.MetricName === metricName);

describe('recursive loop detection (Lambda stops a chain after ~16 hops unless RecursiveLoop is Allow)', () => {
  test('the publisher has RecursiveLoop: Allow', () => {
    expect(resources[fnId('publisher')].Properties.RecursiveLoop).toBe('Allow');
  });

  test('no other function has Allow (they keep the default, Terminate)', () => {
    for (const name of FUNCTION_NAMES.filter((n) => n !== 'publisher')) {
      expect([name, resources[fnId(name)].Properties.RecursiveLoop]).not.toEqual([name, 'Allow']);
    }
    const allowing = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.RecursiveLoop === 'Allow');
    expect(allowing).toHaveLength(1);
  });
});

describe('default timeout (API Gateway WebSocket integrations time out at 29 s, not adjustable)', () => {
  test('default: at most 28 s', () => {
    expect(DEFAULT_TIMEOUT_MAX_SECS).toBeLessThanOrEqual(28);
    expect(resources[fnId('default')].Properties.Timeout).toBeLessThanOrEqual(28);
  });

  test('a longer timeout from context stops synthesis', () => {
    expect(() => build({ defaultTimeoutSecs: '30' })).toThrow(/defaultTimeoutSecs/);
  });
});

describe('alarms when connecting is broken', () => {
  test('authorizer throttles > 0 in one minute, to the alarm topic', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Throttles',
      Namespace: 'AWS/Lambda',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnId('authorizer') } }],
      Statistic: 'Sum',
      Period: 60,
      EvaluationPeriods: 1,
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: topicId() }],
    });
  });

  test('authorizer timeouts and crashes: one metric filter per log line on its own log group, alarmed at ≥ 1 a minute', () => {
    const logGroupId = resources[fnId('authorizer')].Properties.LoggingConfig.LogGroup.Ref;
    const filters = Object.values(resources).filter(
      (r) => r.Type === 'AWS::Logs::MetricFilter' && r.Properties.MetricTransformations[0].MetricName === AUTHORIZER_FAILURE_METRIC,
    );
    expect(filters.map((f) => f.Properties.FilterPattern)).toEqual(AUTHORIZER_FAILURE_PATTERNS.map((p) => p.pattern));
    for (const f of filters) {
      expect(f.Properties.LogGroupName).toEqual({ Ref: logGroupId });
      expect(f.Properties.MetricTransformations).toEqual([
        { MetricName: AUTHORIZER_FAILURE_METRIC, MetricNamespace: 'Switchboard/Switchboard', MetricValue: '1' },
      ]);
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: AUTHORIZER_FAILURE_METRIC,
      Namespace: 'Switchboard/Switchboard',
      Statistic: 'Sum',
      Period: 60,
      EvaluationPeriods: 1,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [{ Ref: topicId() }],
    });
  });

  test.each(['IntegrationError', 'ExecutionError'])('WebSocket API %s (ApiId + Stage) ≥ 1 in 3 of 5 minutes', (metricName) => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: metricName,
      Namespace: 'AWS/ApiGateway',
      Dimensions: Match.arrayEquals([
        { Name: 'ApiId', Value: { Ref: logicalId(built.stack.webSocketApi) } },
        { Name: 'Stage', Value: STAGE_NAME },
      ]),
      Statistic: 'Sum',
      Period: 60,
      EvaluationPeriods: 5,
      DatapointsToAlarm: 3,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [{ Ref: topicId() }],
    });
  });

  test('nothing a bad token causes is alarmed: no authorizer Errors, no WebSocket ClientError', () => {
    const authorizerErrors = alarmsOn('Errors').filter(([, a]) => JSON.stringify(a.Properties.Dimensions).includes(fnId('authorizer')));
    expect(authorizerErrors).toEqual([]);
    expect(alarmsOn('ClientError')).toEqual([]);
  });

  test('an existing topic (alarmTopicArn) receives the new alarms too', () => {
    const topic = 'arn:aws:sns:eu-west-1:123456789012:ops';
    const t = Template.fromStack(build({ alarmTopicArn: topic }).stack);
    for (const metricName of ['Throttles', AUTHORIZER_FAILURE_METRIC, 'IntegrationError', 'ExecutionError']) {
      t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: metricName, AlarmActions: [topic] });
    }
  });
});

/**
 * CloudWatch's matching of an unstructured filter pattern (quoted phrases and words must all
 * occur, `-term` must not; case-sensitive) and of the one JSON equality we use; enough to
 * check the patterns against the lines they are meant for and against a hostile one.
 */
function matches(pattern: string, line: string): boolean {
  const json = /^\{ \$\.([\w.]+) = "([^"]*)" \}$/.exec(pattern);
  if (json) {
    try {
      const value = json[1].split('.').reduce((o: any, k) => (o == null ? undefined : o[k]), JSON.parse(line));
      return value === json[2];
    } catch {
      return false;
    }
  }
  const terms = pattern.match(/-?"[^"]*"|\S+/g) ?? [];
  return terms.every((t) => {
    const negated = t.startsWith('-');
    const text = t.replace(/^-/, '').replace(/^"(.*)"$/, '$1');
    return line.includes(text) !== negated;
  });
}

describe('the authorizer failure patterns, against the lines they are for', () => {
  const matchedBy = (line: string) => AUTHORIZER_FAILURE_PATTERNS.filter((p) => matches(p.pattern, line)).map((p) => p.id);
  // Lambda's own lines (text log format) and Rust's panic hook on stderr.
  test.each([
    ['2025-01-01T00:00:10.012Z 6f1c2d3e-0000-4000-8000-000000000000 Task timed out after 10.01 seconds', 'Timeout'],
    ['REPORT RequestId: 6f1c2d3e-0000-4000-8000-000000000000\tDuration: 10000.00 ms\tBilled Duration: 10000 ms\tMemory Size: 256 MB\tMax Memory Used: 20 MB\tStatus: timeout', 'StatusTimeout'],
    ['INIT_REPORT Init Duration: 10000.00 ms\tPhase: init\tStatus: timeout', 'StatusTimeout'],
    ['INIT_REPORT Init Duration: 206.72 ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError', 'ExitError'],
    ['RequestId: 6f1c2d3e-0000-4000-8000-000000000000 Error: Runtime exited with error: signal: killed', 'RuntimeExited'],
    ['RequestId: 6f1c2d3e-0000-4000-8000-000000000000 Error: Runtime exited with error: signal: killed\nRuntime.OutOfMemory', 'OutOfMemory'],
    ["thread 'main' panicked at services/lambdas/src/authorizer.rs:12:5:\nindex out of bounds", 'Panic'],
    ['{"level":"ERROR","fields":{"message":"user handler panicked","error":"Any { .. }"}}', 'HandlerPanic'],
  ])('%s → %s', (line, id) => {
    expect(matchedBy(line)).toContain(id);
  });

  test('an ordinary bad token matches none, even one whose issuer or key id quotes every phrase', () => {
    const hostile = AUTHORIZER_FAILURE_PATTERNS.map((p) => p.pattern.replace(/ -fields$/, '').replace(/"/g, '')).join(' ');
    const lines = [
      '{"level":"INFO","fields":{"message":"denied","reason":"token expired"}}',
      '{"level":"INFO","fields":{"message":"denied","reason":"no token"}}',
      JSON.stringify({ level: 'INFO', fields: { message: 'denied', reason: `unknown issuer ${JSON.stringify(hostile)}` } }),
      JSON.stringify({ level: 'INFO', fields: { message: 'denied', reason: `unknown key id ${JSON.stringify('user handler panicked')}` } }),
      'START RequestId: 6f1c2d3e-0000-4000-8000-000000000000 Version: $LATEST',
      'END RequestId: 6f1c2d3e-0000-4000-8000-000000000000',
      'REPORT RequestId: 6f1c2d3e-0000-4000-8000-000000000000\tDuration: 2.10 ms\tBilled Duration: 3 ms\tMemory Size: 256 MB\tMax Memory Used: 20 MB',
    ];
    for (const line of lines) expect([line, matchedBy(line)]).toEqual([line, []]);
  });

  test('the JSON lines of our functions all carry `fields` (what the text patterns exclude)', () => {
    const telemetry = fs.readFileSync(path.resolve(__dirname, '..', '..', 'services', 'lambdas', 'src', 'telemetry.rs'), 'utf8');
    expect(telemetry).toContain('.json()');
    expect(telemetry).toContain('lines[0]["fields"]["message"]');
  });

  test('the handler-panic line is lambda_runtime 1.x (Cargo.lock): recheck its CatchPanic log line on a major upgrade', () => {
    const lock = fs.readFileSync(path.resolve(__dirname, '..', '..', 'Cargo.lock'), 'utf8');
    expect(lock).toMatch(/name = "lambda_runtime"\nversion = "1\.\d+\.\d+"/);
  });
});
