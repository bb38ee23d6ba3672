// Alarms that fire when connecting is broken, and none that an ordinary bad token can reach.
//
// A rejected token is the authorizer's deliberate "Unauthorized" error: Lambda counts it in
// the function's `Errors` metric, and API Gateway answers 401 *before* any integration runs,
// so it shows as the WebSocket API's `ClientError` ("a 4XX response returned by API Gateway
// before the integration is invoked"). None of the four alarms below watches either:
//
//   AuthorizerThrottles      the authorizer's Lambda `Throttles` > 0 in a minute: account
//                            concurrency is exhausted and `$connect` is refused (500);
//   AuthorizerFailures       ≥ 1 in a minute of a metric filter on the authorizer's log group
//                            that counts Lambda's own lines for a timeout or a crashed runtime
//                            and the Rust runtime's panic lines (see AUTHORIZER_FAILURE_PATTERNS);
//   WebSocketIntegrationErrors / WebSocketExecutionErrors
//                            the WebSocket stage's `IntegrationError` (an integration answered
//                            4XX/5XX: `connect` fails or refuses what the authorizer allowed,
//                            `default` fails) and `ExecutionError` (API Gateway could not call
//                            the integration: throttled, timed out at 29 s, no permission),
//                            ≥ 1 in 3 of 5 minutes: sustained, not one blip (the per-function
//                            `Errors` alarms already report single failures).
//
// Sources: Lambda metrics (Errors includes errors the function returns):
//   https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
// WebSocket API metrics and their dimensions (ApiId, Stage):
//   https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-logging.html
// Filter pattern syntax (quoted phrases, `-term` excludes, `{ $.field = … }` for JSON):
//   https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html

import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** Metric (in the stack's metrics namespace) counted by the authorizer's failure filters. */
export const AUTHORIZER_FAILURE_METRIC = 'AuthorizerFailures';

/**
 * Lines that mean the authorizer did not answer, one metric filter each. The plain-text ones
 * are written by Lambda itself (text log format, the stack's default) or by Rust's panic hook
 * on stderr, never by our JSON logger: each also excludes `fields`, which every JSON line
 * of ours carries, because a rejected token's issuer or key id is echoed inside such a line
 * (`reason`) and must not be able to page anyone by containing one of these phrases.
 */
export const AUTHORIZER_FAILURE_PATTERNS: ReadonlyArray<{ id: string; pattern: string; what: string }> = [
  { id: 'Timeout', pattern: '"Task timed out after" -fields', what: 'Lambda: the invocation ran into the 10 s timeout' },
  { id: 'StatusTimeout', pattern: '"Status: timeout" -fields', what: 'Lambda REPORT / INIT_REPORT of a timed-out invoke or init' },
  { id: 'ExitError', pattern: '"Runtime.ExitError" -fields', what: 'Lambda: the runtime process exited (crash, failed init)' },
  { id: 'RuntimeExited', pattern: '"Runtime exited" -fields', what: 'Lambda: "Runtime exited with error: …" (signal, exit status)' },
  { id: 'OutOfMemory', pattern: '"Runtime.OutOfMemory" -fields', what: 'Lambda: the function ran out of memory' },
  { id: 'Panic', pattern: '"panicked at" -fields', what: "Rust's panic hook: thread '…' panicked at <file>:<line>" },
  {
    id: 'HandlerPanic',
    pattern: '{ $.fields.message = "user handler panicked" }',
    what: 'lambda_runtime 1.x catches a handler panic and logs this (JSON), then reports the invocation failed',
  },
];

export interface ConnectAlarmsProps {
  readonly authorizer: lambda.Function;
  readonly webSocketApiId: string;
  readonly stageName: string;
  readonly metricsNamespace: string;
  /** Creates one alarm with the stack's defaults and actions (the alarm topic). */
  readonly alarm: (id: string, props: Omit<cloudwatch.AlarmProps, 'evaluationPeriods'> & { evaluationPeriods?: number }) => cloudwatch.Alarm;
}

/** The metric filters and the four alarms above. */
export function addConnectAlarms(scope: Construct, props: ConnectAlarmsProps): void {
  const logGroup = props.authorizer.logGroup as logs.ILogGroup;
  for (const { id, pattern } of AUTHORIZER_FAILURE_PATTERNS) {
    new logs.MetricFilter(scope, `AuthorizerFailure${id}`, {
      logGroup,
      metricNamespace: props.metricsNamespace,
      metricName: AUTHORIZER_FAILURE_METRIC,
      metricValue: '1',
      filterPattern: logs.FilterPattern.literal(pattern),
    });
  }
  const minute = cdk.Duration.minutes(1);
  props.alarm('AuthorizerThrottles', {
    alarmDescription:
      'Switchboard: Lambda throttled the $connect authorizer (account concurrency exhausted): new connections are refused',
    metric: props.authorizer.metricThrottles({ period: minute, statistic: cloudwatch.Stats.SUM }),
    threshold: 0,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
  });
  props.alarm('AuthorizerFailures', {
    alarmDescription:
      'Switchboard: the $connect authorizer timed out, crashed or panicked (log metric filter); those connections were refused',
    metric: new cloudwatch.Metric({
      namespace: props.metricsNamespace,
      metricName: AUTHORIZER_FAILURE_METRIC,
      period: minute,
      statistic: cloudwatch.Stats.SUM,
    }),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
  });
  for (const [metricName, what] of [
    ['IntegrationError', 'an integration (connect, disconnect, default) answered 4XX/5XX'],
    ['ExecutionError', 'API Gateway could not call an integration (throttled, timed out, not permitted)'],
  ] as const) {
    props.alarm(`WebSocket${metricName}s`, {
      alarmDescription: `Switchboard: WebSocket API ${metricName} in 3 of 5 minutes: ${what}; bad tokens are ClientError and never count here`,
      metric: new cloudwatch.Metric({
        namespace: 'AWS/ApiGateway',
        metricName,
        dimensionsMap: { ApiId: props.webSocketApiId, Stage: props.stageName },
        period: minute,
        statistic: cloudwatch.Stats.SUM,
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
    });
  }
}
