// Events on AWS (docs/design.md: Events; AWS deployment): `user.online`, `user.offline` and
// `message.settled` on an EventBridge custom bus.
//
//   roster ──stream (NEW_AND_OLD_IMAGES; INSERT, REMOVE)──▶ events λ ──UpdateItem/GetItem O#<tenant>──▶ history
//   events λ ──SendMessage, DelaySeconds = EVENTS_OFFLINE_DELAY_SECS──▶ events queue
//   events queue ──the offline checks, once due──▶ events λ
//   events λ ──PutEvents (user.online, user.offline)──▶ bus ◀──PutEvents (message.settled)── publisher λ
//   bus ──archive (eventsArchiveDays)
//   bus ──rule source=switchboard──▶ API destination (optional: eventsWebhookUrl)
//
// The context read and checked at synth, the bus, its archive, the events queue and the dead
// letters, the two event source mappings, the environment and grants of the events function
// and of the publisher, the optional webhook (one connection, API destination and rule), and
// the alarms and dashboard widgets about all of it.
//
// Failures, each bounded and reported: the stream's mapping retries a failing batch (halved each
// time: bisect, which costs no retry) at most STREAM_RETRY_ATTEMPTS times and never past
// STREAM_MAX_RECORD_AGE, then sends the batch's description (shard, sequence numbers; not the
// records) to `EventsStreamFailures`; the queue's messages go to `EventsDeadLetterQueue` after 5
// receives; the webhook rule's events go to `EventsWebhookDeadLetterQueue` once EventBridge's
// retry policy gave up. Every one of those queues alarms on its first message.

import * as cdk from 'aws-cdk-lib';
import { Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { ONLINE_KEY_PATTERN } from './names';
import type { SwitchboardStack } from './switchboard-stack';

/** Events settings (always on: the stack always creates the bus and the events function). */
export interface EventsSettings {
  /** EVENTS_OFFLINE_DELAY_SECS (events function): 0–900 (SQS's largest DelaySeconds), default 3. */
  readonly offlineDelaySecs: number;
  /** Retention of the bus's archive in days, default 30; 0 keeps the events indefinitely. */
  readonly archiveDays: number;
  /** `maxConcurrency` of the events queue's event source: 2–1000, default 5. */
  readonly maxConcurrency: number;
  /** The optional webhook: one API destination + rule (undefined: none). */
  readonly webhook?: WebhookSettings;
}

/** One HTTPS endpoint every event is POSTed to by EventBridge (an API destination). */
export interface WebhookSettings {
  /** `eventsWebhookUrl`: the endpoint (https). */
  readonly url: string;
  /** `eventsWebhookApiKeySecret`: the Secrets Manager secret (name or ARN) holding the API key; unset: no auth. */
  readonly apiKeySecret?: string;
  /** `eventsWebhookApiKeyHeader`: the header that carries the key, default `x-api-key`. */
  readonly apiKeyHeader: string;
}

/** The `Source` of every event the functions put (services/lambdas: EventBridgeSink). */
export const EVENT_SOURCE = 'switchboard';
/** The events function's timeout; the events queue's visibility timeout is 6× this. */
export const EVENTS_TIMEOUT_SECS = 30;
/** Stream records per invocation (the DynamoDB Streams mapping's default, and our choice). */
export const STREAM_BATCH_SIZE = 100;
/** Retries of a failing stream batch before it is sent to the failure queue. */
export const STREAM_RETRY_ATTEMPTS = 10;
/** The oldest stream record the mapping still hands to the function (see infra/README.md: Events). */
export const STREAM_MAX_RECORD_AGE = cdk.Duration.hours(1);
/** The webhook rule's retry policy: EventBridge's largest (185 attempts, 24 hours). */
export const WEBHOOK_RETRY_ATTEMPTS = 185;
export const WEBHOOK_MAX_EVENT_AGE = cdk.Duration.hours(24);
/** An iterator age above this (ms) in 3 of 5 minutes alarms: events are that late. */
export const ITERATOR_AGE_ALARM_MS = 60_000;
/**
 * EventBridge connections always authorize (API key, basic or OAuth); "no auth" is an API key
 * header that is not a secret: this header with the stack's name.
 */
export const NO_AUTH_HEADER = 'x-switchboard-stack';

const WEBHOOK_KEYS = ['eventsWebhookUrl', 'eventsWebhookApiKeySecret', 'eventsWebhookApiKeyHeader'] as const;

/**
 * Reads the events context. The webhook keys go together: `eventsWebhookUrl` alone (no auth),
 * with `eventsWebhookApiKeySecret` (and optionally `eventsWebhookApiKeyHeader`), or none of
 * them; a key set without the one it needs stops synthesis naming the missing key. An API key
 * given in the context is refused (it would be in the template in plain text).
 */
export function eventsFromContext(
  str: (key: string) => string | undefined,
  int: (key: string, dflt: number, min: number, max: number) => number,
): EventsSettings {
  for (const plain of ['eventsWebhookApiKey', 'eventsWebhookApiKeyValue']) {
    if (str(plain) !== undefined) {
      throw new Error(
        `context ${plain}: the API key is never given to the stack (it would be in the template in plain text); ` +
          'store it in Secrets Manager and set eventsWebhookApiKeySecret to the secret name',
      );
    }
  }
  const [url, secret, header] = WEBHOOK_KEYS.map((k) => str(k) || undefined);
  let webhook: WebhookSettings | undefined;
  if (url === undefined) {
    const set = WEBHOOK_KEYS.filter((k) => str(k));
    if (set.length > 0) {
      throw new Error(`context eventsWebhookUrl: missing, but ${set.join(', ')} set (the webhook needs its URL, or none of ${WEBHOOK_KEYS.join(', ')})`);
    }
  } else {
    if (!/^https:\/\/[^\s/?#]+\S*$/.test(url)) throw new Error(`context eventsWebhookUrl: must be an https:// URL (EventBridge API destinations call HTTPS only), got '${url}'`);
    if (header !== undefined && secret === undefined) {
      throw new Error('context eventsWebhookApiKeySecret: missing, but eventsWebhookApiKeyHeader set (the header needs the secret holding its key)');
    }
    if (header !== undefined && !/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,512}$/.test(header)) {
      throw new Error(`context eventsWebhookApiKeyHeader: '${header}' is not an HTTP header name`);
    }
    webhook = { url, apiKeySecret: secret, apiKeyHeader: header ?? 'x-api-key' };
  }
  return {
    // The bounds are the Rust side's (services/core/src/events: DEFAULT_OFFLINE_DELAY_SECS, MAX_OFFLINE_DELAY_SECS).
    offlineDelaySecs: int('eventsOfflineDelaySecs', 3, 0, 900),
    archiveDays: int('eventsArchiveDays', 30, 0, 3650),
    maxConcurrency: int('eventsMaxConcurrency', 5, 2, 1000),
    webhook,
  };
}

/** What the stack holds of events. */
export interface EventsResources {
  readonly bus: events.EventBus;
  readonly archive: events.Archive;
  /** The offline checks (delayed messages), which trigger the events function. */
  readonly queue: sqs.Queue;
  /** The checks that failed 5 receives. */
  readonly deadLetterQueue: sqs.Queue;
  /** The descriptions of stream batches the mapping gave up on (retries or record age exhausted). */
  readonly streamFailures: sqs.Queue;
  readonly streamMapping: lambda.EventSourceMapping;
  readonly webhook?: {
    readonly connection: events.Connection;
    readonly destination: events.ApiDestination;
    readonly rule: events.Rule;
    readonly deadLetterQueue: sqs.Queue;
  };
}

/**
 * The on-failure destination of the stream's mapping, without the grant helper of
 * `SqsDlq` (which adds `sqs:GetQueueAttributes` and `sqs:GetQueueUrl`): the role gets
 * `sqs:SendMessage` on it only, below.
 */
class QueueDestination implements lambda.IEventSourceDlq {
  constructor(private readonly queue: sqs.IQueue) {}
  bind(): lambda.DlqDestinationConfig {
    return { destination: this.queue.queueArn };
  }
}

/** A dead-letter queue like the stack's other one: SSE-SQS, TLS only, kept 14 days. */
function deadLetterQueue(stack: SwitchboardStack, id: string): sqs.Queue {
  return new sqs.Queue(stack, id, { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: cdk.Duration.days(14) });
}

/** The bus, its archive, the queues, the mappings, environment and grants, the optional webhook. */
export function createEvents(stack: SwitchboardStack, settings: EventsSettings): EventsResources {
  const fns = stack.functions;
  const fn = fns.events;
  const bus = new events.EventBus(stack, 'EventBus', {
    eventBusName: `${stack.stackName}-events`,
    description: `Switchboard events (source ${EVENT_SOURCE}): user.online, user.offline, message.settled`,
  });
  const archive = bus.archive('EventArchive', {
    description: `Switchboard events, for replay`,
    eventPattern: { source: [EVENT_SOURCE] },
    retention: settings.archiveDays > 0 ? cdk.Duration.days(settings.archiveDays) : undefined,
  });

  // ---- The offline checks: delayed messages to a queue that triggers the function ----------
  const checksDlq = deadLetterQueue(stack, 'EventsDeadLetterQueue');
  const queue = new sqs.Queue(stack, 'EventsQueue', {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    // AWS guidance for SQS-triggered functions: at least 6× the function timeout.
    visibilityTimeout: cdk.Duration.seconds(6 * EVENTS_TIMEOUT_SECS),
    retentionPeriod: cdk.Duration.days(4),
    deadLetterQueue: { queue: checksDlq, maxReceiveCount: 5 },
  });
  fn.addEventSource(
    new SqsEventSource(queue, { batchSize: 10, reportBatchItemFailures: true, maxConcurrency: settings.maxConcurrency }),
  );

  // ---- The roster's stream ------------------------------------------------------------------
  // Not `DynamoEventSource`: its grant adds `dynamodb:ListStreams` on `*`; the statement below
  // names the stream. Only INSERT and REMOVE invoke the function (a `refresh`'s MODIFY of
  // `tokenExpiresAt` is filtered out by Lambda, at no cost).
  const streamArn = stack.table.tableStreamArn;
  if (!streamArn) throw new Error('the roster table has no stream (events need NEW_AND_OLD_IMAGES)');
  const streamFailures = deadLetterQueue(stack, 'EventsStreamFailures');
  const streamMapping = fn.addEventSourceMapping('RosterStream', {
    eventSourceArn: streamArn,
    startingPosition: lambda.StartingPosition.LATEST,
    batchSize: STREAM_BATCH_SIZE,
    bisectBatchOnError: true,
    retryAttempts: STREAM_RETRY_ATTEMPTS,
    maxRecordAge: STREAM_MAX_RECORD_AGE,
    reportBatchItemFailures: true,
    onFailure: new QueueDestination(streamFailures),
    filters: [lambda.FilterCriteria.filter({ eventName: lambda.FilterRule.or('INSERT', 'REMOVE') })],
  });

  // ---- Environment -------------------------------------------------------------------------
  fn.addEnvironment('ROSTER_TABLE', stack.table.tableName);
  fn.addEnvironment('HISTORY_TABLE', stack.historyTable.tableName);
  fn.addEnvironment('EVENT_BUS_NAME', bus.eventBusName);
  fn.addEnvironment('EVENTS_QUEUE_URL', queue.queueUrl);
  fn.addEnvironment('EVENTS_OFFLINE_DELAY_SECS', String(settings.offlineDelaySecs));
  fn.addEnvironment('METRICS_NAMESPACE', stack.metricsNamespace);
  // The publisher's `message.settled` (with receipts on).
  fns.publisher.addEnvironment('EVENT_BUS_NAME', bus.eventBusName);

  // ---- Grants (least privilege, docs/design.md: Events) ---------------------------------------
  // The online items only (`O#<tenant>`): `add` and `remove` are conditional UpdateItems, and a
  // condition that fails is followed by a consistent GetItem; `mark_offline` another UpdateItem.
  const onOnlineKeys = { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [ONLINE_KEY_PATTERN] } };
  const statements = [
    new iam.PolicyStatement({
      sid: 'OnlineItems',
      actions: ['dynamodb:UpdateItem', 'dynamodb:GetItem'],
      resources: [stack.historyTable.tableArn],
      conditions: onOnlineKeys,
    }),
    // An INSERT counts only while its roster item exists (a consistent GetItem), so a stream
    // batch delivered again never adds a closed connection back (docs/design.md: Events).
    new iam.PolicyStatement({ sid: 'RosterItems', actions: ['dynamodb:GetItem'], resources: [stack.table.tableArn] }),
    // What Lambda's poller needs, on this one stream (the DynamoDB developer guide's policy).
    new iam.PolicyStatement({
      sid: 'RosterStream',
      actions: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'],
      resources: [streamArn],
    }),
    new iam.PolicyStatement({ sid: 'StreamFailures', actions: ['sqs:SendMessage'], resources: [streamFailures.queueArn] }),
    new iam.PolicyStatement({ sid: 'OfflineChecks', actions: ['sqs:SendMessage'], resources: [queue.queueArn] }),
    new iam.PolicyStatement({ sid: 'PutEvents', actions: ['events:PutEvents'], resources: [bus.eventBusArn] }),
  ];
  for (const s of statements) fn.addToRolePolicy(s);
  fns.publisher.addToRolePolicy(new iam.PolicyStatement({ sid: 'PutEvents', actions: ['events:PutEvents'], resources: [bus.eventBusArn] }));

  // What rules, replays and consumers need (infra/README.md: Events).
  new cdk.CfnOutput(stack, 'EventBusName', { description: 'EventBridge bus of the events (EVENT_BUS_NAME): put your rules on it', value: bus.eventBusName });
  new cdk.CfnOutput(stack, 'EventBusArn', { description: 'EventBridge bus of the events: the Destination of a replay', value: bus.eventBusArn });
  new cdk.CfnOutput(stack, 'EventArchiveArn', { description: 'Archive of the events: the EventSourceArn of a replay', value: archive.archiveArn });

  Validations.of(streamFailures).acknowledge({
    id: 'AwsSolutions::AwsSolutions-SQS3',
    reason:
      "This queue is a dead-letter queue itself: the on-failure destination of the roster stream's event source mapping (descriptions of the batches it gave up on). A queue of its own would only move the question; its first message alarms (EventsStreamFailuresDepth).",
  });

  return {
    bus,
    archive,
    queue,
    deadLetterQueue: checksDlq,
    streamFailures,
    streamMapping,
    webhook: settings.webhook ? createWebhook(stack, bus, settings.webhook) : undefined,
  };
}

/**
 * The optional webhook: a connection (the API key from Secrets Manager as a dynamic reference,
 * or the no-auth header), an API destination, and a rule on `source: switchboard` that POSTs
 * each event's `detail` (the event JSON, the body `serve`'s webhooks send) with EventBridge's
 * largest retry policy, then a dead-letter queue.
 */
function createWebhook(stack: SwitchboardStack, bus: events.EventBus, webhook: WebhookSettings): NonNullable<EventsResources['webhook']> {
  const authorization = webhook.apiKeySecret
    ? events.Authorization.apiKey(webhook.apiKeyHeader, cdk.SecretValue.secretsManager(webhook.apiKeySecret))
    : events.Authorization.apiKey(NO_AUTH_HEADER, cdk.SecretValue.unsafePlainText(stack.stackName));
  const connection = new events.Connection(stack, 'EventsWebhookConnection', {
    authorization,
    description: webhook.apiKeySecret
      ? `Switchboard events webhook: API key in header ${webhook.apiKeyHeader}`
      : `Switchboard events webhook: no auth (header ${NO_AUTH_HEADER}, not a secret)`,
  });
  const destination = new events.ApiDestination(stack, 'EventsWebhook', {
    connection,
    endpoint: webhook.url,
    httpMethod: events.HttpMethod.POST,
    description: 'Switchboard events webhook',
  });
  const deadLetters = deadLetterQueue(stack, 'EventsWebhookDeadLetterQueue');
  const rule = new events.Rule(stack, 'EventsWebhookRule', {
    eventBus: bus,
    description: 'Switchboard: every event to the webhook (eventsWebhookUrl)',
    eventPattern: { source: [EVENT_SOURCE] },
    targets: [
      new targets.ApiDestination(destination, {
        event: events.RuleTargetInput.fromEventPath('$.detail'),
        deadLetterQueue: deadLetters,
        retryAttempts: WEBHOOK_RETRY_ATTEMPTS,
        maxEventAge: WEBHOOK_MAX_EVENT_AGE,
      }),
    ],
  });
  Validations.of(deadLetters).acknowledge({
    id: 'AwsSolutions::AwsSolutions-SQS3',
    reason:
      "This queue is a dead-letter queue itself: the webhook rule target's, holding the events EventBridge could not deliver within its retry policy (185 attempts, 24 hours). Its first message alarms (EventsWebhookDeadLetterQueueDepth).",
  });
  return { connection, destination, rule, deadLetterQueue: deadLetters };
}

type AlarmFactory = (id: string, props: Omit<cloudwatch.AlarmProps, 'evaluationPeriods'> & { evaluationPeriods?: number }) => cloudwatch.Alarm;

/** The events alarms (the function's `Errors` is with the other functions', in alarms.ts). */
export function addEventsAlarms(stack: SwitchboardStack, alarm: AlarmFactory): void {
  const ev = stack.events;
  const oneMinuteMax = { period: cdk.Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM };
  alarm('EventsFailed', {
    alarmDescription:
      'Switchboard: EventBridge refused events (EMF EventsFailed of the events function or the publisher): their batch item is retried, but PutEvents is failing',
    metric: stack.emfMetric('EventsFailed', { period: cdk.Duration.minutes(5) }),
    threshold: 0,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
  });
  alarm('EventsStreamIteratorAge', {
    alarmDescription: `Switchboard: the events function is more than ${ITERATOR_AGE_ALARM_MS / 1000} s behind the roster's stream in 3 of 5 minutes (user.online and user.offline are late)`,
    metric: stack.functions.events.metric('IteratorAge', oneMinuteMax),
    threshold: ITERATOR_AGE_ALARM_MS,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 5,
    datapointsToAlarm: 3,
  });
  const depth = (id: string, queue: sqs.IQueue, what: string) =>
    alarm(id, {
      alarmDescription: `Switchboard: ${what}`,
      metric: queue.metricApproximateNumberOfMessagesVisible(oneMinuteMax),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
  depth(
    'EventsStreamFailuresDepth',
    ev.streamFailures,
    `the events function gave up on roster stream records (${STREAM_RETRY_ATTEMPTS} retries or ${STREAM_MAX_RECORD_AGE.toHours()} h old): their events are missing; the message names the shard and sequence numbers, readable from the stream for 24 h`,
  );
  depth('EventsDeadLetterQueueDepth', ev.deadLetterQueue, 'offline checks failed 5 receives (their user.offline is missing)');
  if (ev.webhook) {
    depth('EventsWebhookDeadLetterQueueDepth', ev.webhook.deadLetterQueue, 'events the webhook (API destination) did not take within 24 hours / 185 attempts');
  }
}

type GraphFactory = (title: string, left: cloudwatch.IMetric[], extra?: Partial<cloudwatch.GraphWidgetProps>) => cloudwatch.GraphWidget;

/** One dashboard row: events put and failed, the function behind the stream, the queues. */
export function eventsWidgets(stack: SwitchboardStack, graph: GraphFactory): cloudwatch.IWidget[] {
  const ev = stack.events;
  const fn = stack.functions.events;
  const minute = { period: cdk.Duration.minutes(1) };
  const queues: cloudwatch.IMetric[] = [
    ev.queue.metricApproximateNumberOfMessagesVisible({ ...minute, label: 'offline checks due' }),
    ev.queue.metricApproximateNumberOfMessagesDelayed({ ...minute, label: 'offline checks delayed' }),
    ev.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ ...minute, label: 'checks DLQ' }),
    ev.streamFailures.metricApproximateNumberOfMessagesVisible({ ...minute, label: 'stream failures' }),
  ];
  if (ev.webhook) queues.push(ev.webhook.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ ...minute, label: 'webhook DLQ' }));
  return [
    graph('Events per minute', ['Online', 'Offline', 'EventsPut', 'EventsFailed'].map((m) => stack.emfMetric(m, { label: m }))),
    graph('Events function', [fn.metricInvocations({ ...minute, label: 'invocations' }), fn.metricErrors({ ...minute, label: 'errors' })], {
      right: [fn.metric('IteratorAge', { ...minute, statistic: cloudwatch.Stats.MAXIMUM, label: 'stream iterator age (ms)' })],
      rightAnnotations: [{ value: ITERATOR_AGE_ALARM_MS, label: 'alarm' }],
    }),
    graph('Events queues', queues),
  ];
}
