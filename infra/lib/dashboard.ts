// Operations, part two: one CloudWatch dashboard page for the whole stack.

import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { fanoutRate, FUNCTION_NAMES, SwitchboardConfig } from './config';
import { eventsWidgets } from './events';
import { STAGE_NAME, TARGET_TYPES } from './names';
import type { SwitchboardStack } from './switchboard-stack';

/** One page: publisher EMF metrics, the queues, both APIs, the functions, the alarms. */
export function createDashboard(stack: SwitchboardStack, config: SwitchboardConfig): cloudwatch.Dashboard {
  const fns = stack.functions;
  const dashboard = new cloudwatch.Dashboard(stack, 'Dashboard', {
    dashboardName: `${stack.stackName}-${cdk.Aws.REGION}`,
    defaultInterval: cdk.Duration.hours(3),
  });
  const byTarget = (metric: string) =>
    TARGET_TYPES.map((t) => stack.emfMetric(metric, { dimensionsMap: { Target: t }, label: t }));
  const ws = (metricName: string, statistic: string = cloudwatch.Stats.SUM) =>
    new cloudwatch.Metric({
      namespace: 'AWS/ApiGateway',
      metricName,
      dimensionsMap: { ApiId: stack.webSocketApi.apiId, Stage: STAGE_NAME },
      period: cdk.Duration.minutes(1),
      statistic,
    });
  const graph = (title: string, left: cloudwatch.IMetric[], extra: Partial<cloudwatch.GraphWidgetProps> = {}) =>
    new cloudwatch.GraphWidget({ title, left, width: 8, height: 6, ...extra });
  dashboard.addWidgets(
    new cloudwatch.TextWidget({
      markdown: `# ${stack.stackName}\nFan-out budget ${config.postBudgetPerSecond} posts/s = ${config.publisherMaxConcurrency} publishers × FANOUT_RATE ${fanoutRate(config)}. EMF namespace \`${stack.metricsNamespace}\`.`,
      width: 24,
      height: 2,
    }),
  );
  dashboard.addWidgets(
    graph('Posts per minute', ['Delivered', 'Gone', 'Failed', 'Throttled', 'Retries'].map((m) => stack.emfMetric(m, { label: m }))),
    graph('Delivered by target type', byTarget('Delivered')),
    graph('Fan-out duration per message (ms)', [
      stack.emfMetric('FanoutDuration', { statistic: cloudwatch.Stats.p(50), label: 'p50' }),
      stack.emfMetric('FanoutDuration', { statistic: cloudwatch.Stats.p(99), label: 'p99' }),
      stack.emfMetric('FanoutDuration', { statistic: cloudwatch.Stats.MAXIMUM, label: 'max' }),
    ]),
  );
  // Web Push (docs/design.md: Web Push), with push on: sends accepted by push services, failed after their
  // retries, devices deleted on 404/410 (the publisher's EMF documents).
  if (config.push) {
    dashboard.addWidgets(
      graph('Web Push per minute', ['Pushed', 'PushFailed', 'DevicesPruned'].map((m) => stack.emfMetric(m, { label: m })), {
        width: 12,
      }),
      graph('Pushed by target type', byTarget('Pushed'), { width: 12 }),
    );
  }
  // Events (docs/design.md: Events; lib/events.ts).
  dashboard.addWidgets(...eventsWidgets(stack, graph));
  dashboard.addWidgets(
    graph('Queue depth', [
      stack.queue.metricApproximateNumberOfMessagesVisible({ period: cdk.Duration.minutes(1), label: 'queue visible' }),
      stack.queue.metricApproximateNumberOfMessagesNotVisible({ period: cdk.Duration.minutes(1), label: 'queue in flight' }),
      stack.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: cdk.Duration.minutes(1), label: 'DLQ' }),
    ]),
    graph(
      'Oldest queued message (s)',
      [stack.queue.metricApproximateAgeOfOldestMessage({ period: cdk.Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM })],
      { leftAnnotations: [{ value: config.queueAgeAlarmSecs, label: 'alarm' }] },
    ),
    graph(
      'Publisher duration (ms) and concurrency',
      [fns.publisher.metricDuration({ period: cdk.Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM, label: 'max duration' })],
      {
        right: [fns.publisher.metric('ConcurrentExecutions', { period: cdk.Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM })],
        leftAnnotations: [{ value: config.publisherTimeoutSecs * 1000, label: 'timeout' }],
        rightAnnotations: [{ value: config.publisherMaxConcurrency, label: 'maxConcurrency' }],
      },
    ),
  );
  dashboard.addWidgets(
    graph('Publish API (EMF)', ['Requests', 'Accepted', 'ClientErrors', 'ServerErrors'].map((m) => stack.emfMetric(m, { label: m }))),
    graph('Publish API (API Gateway)', [
      stack.httpApi.metricCount({ period: cdk.Duration.minutes(1), label: 'requests' }),
      stack.httpApi.metricClientError({ period: cdk.Duration.minutes(1), label: '4xx' }),
      stack.httpApi.metricServerError({ period: cdk.Duration.minutes(1), label: '5xx' }),
    ], { right: [stack.httpApi.metricLatency({ period: cdk.Duration.minutes(1), statistic: cloudwatch.Stats.p(99), label: 'p99 latency' })] }),
    graph('WebSocket API', [
      ws('ConnectCount'),
      ws('MessageCount'),
      ws('ClientError'),
      ws('ExecutionError'),
      ws('IntegrationError'),
    ]),
  );
  dashboard.addWidgets(
    graph(
      'Function errors',
      FUNCTION_NAMES.map((n) => fns[n].metricErrors({ period: cdk.Duration.minutes(1), label: n })),
      { width: 12 },
    ),
    graph(
      'Function throttles',
      FUNCTION_NAMES.map((n) => fns[n].metricThrottles({ period: cdk.Duration.minutes(1), label: n })),
      { width: 12 },
    ),
  );
  dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: stack.alarms, width: 24, height: 4 }));
  return dashboard;
}
