// Operations, part one: alarms that mean trouble, each notifying one SNS topic (the
// stack's own, or `alarmTopicArn`), and the metric filter on the verifiers' logs that
// one of them watches. The connect-path alarms are in connect-alarms.ts.

import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { SwitchboardConfig } from './config';
import { addConnectAlarms } from './connect-alarms';
import { addEventsAlarms } from './events';
import { pascal } from './functions';
import { STAGE_NAME } from './names';
import type { SwitchboardStack } from './switchboard-stack';

/**
 * Log lines (the `message` of the functions' JSON logs) that mean the JWT key source is
 * unusable: the function cannot verify any token. Counted by a metric filter, alarmed on;
 * a rejected token is not among them (the test checks each text against the Rust sources).
 */
export const AUTH_FAILURE_MESSAGES: Record<'authorizer' | 'default' | 'publish-api', string[]> = {
  // `telemetry::start("<function>", …)` logs "<function> configuration invalid" for any
  // start-up failure, unusable keys included. `default` verifies `refresh` tokens.
  authorizer: ['authorizer configuration invalid', 'JWKS fetch failed'],
  default: ['default configuration invalid', 'JWKS fetch failed'],
  'publish-api': ['publish-api configuration invalid', 'JWKS fetch failed'],
};

/** The stack's own topic (or the one given by `alarmTopicArn`), with an optional e-mail subscriber. */
export function createAlarmTopic(stack: SwitchboardStack, config: SwitchboardConfig): sns.ITopic {
  if (config.alarmTopicArn) {
    if (config.alarmEmail) throw new Error('context alarmEmail subscribes to the stack\'s own topic: drop it or alarmTopicArn');
    return sns.Topic.fromTopicArn(stack, 'AlarmTopic', config.alarmTopicArn);
  }
  const topic = new sns.Topic(stack, 'AlarmTopic', { displayName: `${stack.stackName} alarms`, enforceSSL: true });
  if (config.alarmEmail) topic.addSubscription(new subscriptions.EmailSubscription(config.alarmEmail));
  return topic;
}

/**
 * Alarms that mean trouble, each to the one topic. Not the authorizer's `Errors`: every
 * rejected token is one (its `Unauthorized` is an error by design), so anyone could page
 * the operator; a metric filter on the log lines that mean "no key to verify with" instead,
 * and the alarms of lib/connect-alarms.ts for an authorizer or integration that is down.
 */
export function createAlarms(stack: SwitchboardStack, config: SwitchboardConfig): void {
  const fns = stack.functions;
  const alarm = (id: string, props: Omit<cloudwatch.AlarmProps, 'evaluationPeriods'> & { evaluationPeriods?: number }) => {
    const a = new cloudwatch.Alarm(stack, id, {
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      ...props,
      evaluationPeriods: props.evaluationPeriods ?? 1,
    });
    a.addAlarmAction(new cwActions.SnsAction(stack.alarmTopic));
    stack.alarms.push(a);
    return a;
  };
  alarm('DeadLetterQueueDepth', {
    alarmDescription: 'Switchboard: messages in the dead-letter queue (malformed bodies or 5 failed receives)',
    metric: stack.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: cdk.Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM }),
    threshold: 0,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
  });
  alarm('QueueOldestMessageAge', {
    alarmDescription: `Switchboard: the oldest queued message waits more than ${config.queueAgeAlarmSecs} s (publishers behind or failing)`,
    metric: stack.queue.metricApproximateAgeOfOldestMessage({ period: cdk.Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM }),
    threshold: config.queueAgeAlarmSecs,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 5,
    datapointsToAlarm: 3,
  });
  for (const name of ['connect', 'disconnect', 'default', 'publisher', 'publish-api', 'events'] as const) {
    alarm(`${pascal(name)}Errors`, {
      alarmDescription: `Switchboard: ${name} function errors (failed invocations)`,
      metric: fns[name].metricErrors({ period: cdk.Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
  }
  const timeoutMs = config.publisherTimeoutSecs * 1000;
  alarm('PublisherDurationNearTimeout', {
    alarmDescription: `Switchboard: a publisher invocation ran longer than 80% of its ${config.publisherTimeoutSecs} s timeout`,
    metric: fns.publisher.metricDuration({ period: cdk.Duration.minutes(5), statistic: cloudwatch.Stats.MAXIMUM }),
    threshold: Math.floor(timeoutMs * 0.8),
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
  });
  alarm('PublisherThrottles', {
    alarmDescription: 'Switchboard: publisher invocations throttled by Lambda (account concurrency exhausted)',
    metric: fns.publisher.metricThrottles({ period: cdk.Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
    threshold: 0,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
  });
  alarm('PublisherPostsThrottled', {
    alarmDescription:
      "Switchboard: PostToConnection answered 429 in 3 of 5 minutes: the account's API Gateway quota is exhausted (every client's $connect suffers too); lower postBudgetPerSecond or raise the quota",
    metric: stack.emfMetric('Throttled'),
    threshold: 0,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 5,
    datapointsToAlarm: 3,
  });
  alarm('PublishApi5xx', {
    alarmDescription: 'Switchboard: the publish API answered 5xx (enqueue failures, function errors or timeouts)',
    metric: stack.httpApi.metricServerError({ period: cdk.Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
    threshold: 0,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
  });
  // Key source unusable: a metric filter on the exact log messages, on every verifier.
  for (const name of ['authorizer', 'default', 'publish-api'] as const) {
    new logs.MetricFilter(stack, `${pascal(name)}AuthConfigFailures`, {
      logGroup: fns[name].logGroup as logs.ILogGroup,
      metricNamespace: stack.metricsNamespace,
      metricName: 'AuthConfigFailures',
      metricValue: '1',
      filterPattern: logs.FilterPattern.any(
        ...AUTH_FAILURE_MESSAGES[name].map((m) => logs.FilterPattern.stringValue('$.fields.message', '=', m)),
      ),
    });
  }
  alarm('AuthConfigFailures', {
    alarmDescription:
      'Switchboard: the authorizer, the $default route or the publish API cannot load its JWT keys (configuration invalid, keys unusable, or JWKS fetch failed); tokens cannot be verified',
    metric: stack.emfMetric('AuthConfigFailures', { period: cdk.Duration.minutes(5) }),
    threshold: 0,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
  });
  addEventsAlarms(stack, alarm);
  addConnectAlarms(stack, {
    authorizer: fns.authorizer,
    webSocketApiId: stack.webSocketApi.apiId,
    stageName: STAGE_NAME,
    metricsNamespace: stack.metricsNamespace,
    alarm,
  });
}
