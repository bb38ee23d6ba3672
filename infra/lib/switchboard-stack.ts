// The whole AWS deployment of Switchboard (docs/design.md: AWS deployment) in one stack:
//
//   clients ──wss──▶ WebSocket API (stage main) ──$connect──▶ authorizer ─▶ connect ─▶ roster (DynamoDB)
//                                              ──$disconnect─▶ disconnect ─▶ roster
//                                              ──ping───────▶ MOCK integration: {"type":"pong"} (lib/keepalive.ts)
//                                              ──$default───▶ default (ping / whoami inline; resume: Query history,
//                                                                         post the missed frames to the caller;
//                                                                         refresh: verify, UpdateItem tokenExpiresAt)
//   backends ─https─▶ HTTP API POST /v1/messages ─▶ publish-api ─▶ SQS queue ─▶ publisher ─▶ @connections
//   backends ─SendMessage──────────────────────────────────────▶ SQS queue        │  ├─▶ roster (Query/Scan)
//                                                                                │  └─▶ history (BatchWriteItem)
//   backends ─https─▶ HTTP API GET …/presence ─▶ publish-api ─▶ roster (Query, table and byUser)
//   backends ─https─▶ HTTP API GET …/usage ────▶ publish-api ─▶ history (Query U#<tenant>; usage per tenant,
//                                                               written by publish-api, publisher, connect, disconnect)
//                                                               DLQ (5 receives) ◀┘ (malformed bodies at once)
//   publisher ─SendMessage (continuation / retry work items, docs/design.md: Fan-out at any size)─▶ SQS queue
//   publisher ─https, VAPID-signed (Web Push, lib/push.ts; over the internet: no VPC)─▶ push services
//   clients ─push_subscribe / POST /v1/push/subscriptions─▶ default / publish-api ─▶ history (D#<tenant> device items)
//   roster ─stream─▶ events ─▶ history (O#<tenant> online items), events queue (delayed offline checks) ─▶ events;
//   events, publisher ─PutEvents─▶ EventBridge bus (archive; optional webhook rule) (lib/events.ts)
//
// Operations: alarms to one SNS topic (output `AlarmTopicArn`), a CloudWatch dashboard,
// EMF metrics from the publisher and the publish API (namespace METRICS_NAMESPACE), stage
// throttling on both APIs (the WebSocket stage's sized from expected connections, sizing.ts),
// X-Ray tracing (active, passthrough or off). See infra/README.md for each choice.
//
// Lambda code: plain `lambda.Code.fromAsset(<lambdaDir>/<name>/bootstrap.zip)` of the zips
// `cargo lambda build --profile lambda-release --output-format zip` writes, not `cargo-lambda-cdk`'s
// RustFunction: synthesis then needs neither cargo, cargo-lambda, Zig nor Docker, works
// offline, is fast enough for unit tests, and builds the Rust code exactly once (in CI or
// by the developer) instead of once per `cdk synth`.
//
// IAM: every function gets its own role with explicit statements (exact actions, exact
// resources) instead of `grant*` helpers that add wildcard actions, and no AWS managed
// policy: logging is `logs:CreateLogStream`/`logs:PutLogEvents` on the function's own
// log group (whose ARN attribute ends in `:*`, the log-stream part, a CloudFormation
// attribute rather than a literal wildcard in our policy).
//
// Here: parameters, tables, queues, the two APIs, environment wiring and outputs. Beside it:
// functions.ts (each function, its role and log group), permissions.ts (the IAM statements),
// alarms.ts and connect-alarms.ts (alarms, the topic), dashboard.ts, nag.ts (the cdk-nag
// findings accepted), names.ts (names the parts share), keepalive.ts (the `ping` route), sizing.ts
// (the WebSocket stage throttle from expected connections), push.ts (Web Push context and environment),
// events.ts (the events function's stream and queue, the EventBridge bus, archive and webhook).

import * as cdk from 'aws-cdk-lib';
import { Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration, WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { createAlarms, createAlarmTopic } from './alarms';
import { fanoutRate, FUNCTION_NAMES, FunctionName, SwitchboardConfig } from './config';
import { createDashboard } from './dashboard';
import { createEvents, EventsResources } from './events';
import { rustFunction } from './functions';
import { ISSUERS_FILE_PATH, stageIssuersFile } from './issuers';
import { nagAcknowledgments } from './nag';
import { STAGE_NAME, USER_INDEX } from './names';
import { addPingRoute } from './keepalive';
import { grantLeastPrivilege } from './permissions';
import { addPushEnvironment } from './push';
import { stageTenantsFile, TENANTS_FILE_PATH, TENANTS_FUNCTIONS } from './tenants';

export { AUTH_FAILURE_MESSAGES } from './alarms';
export { STAGE_NAME, TARGET_TYPES, USAGE_KEY_PATTERN, USER_INDEX } from './names';

/**
 * The HTTP publish API's routes, all served by `publish-api`
 * (docs/design.md: Publish API; Presence; Usage; Web Push).
 */
export const PUBLISH_API_ROUTES: ReadonlyArray<readonly [apigwv2.HttpMethod, string]> = [
  [apigwv2.HttpMethod.POST, '/v1/messages'],
  [apigwv2.HttpMethod.GET, '/v1/messages/{id}'],
  [apigwv2.HttpMethod.GET, '/v1/tenants/{tenant}/presence'],
  [apigwv2.HttpMethod.GET, '/v1/tenants/{tenant}/presence/summary'],
  [apigwv2.HttpMethod.GET, '/v1/tenants/{tenant}/users/{user}/presence'],
  // The operator console's tenants list (an admin's tenants with their presence summaries).
  [apigwv2.HttpMethod.GET, '/v1/tenants'],
  [apigwv2.HttpMethod.GET, '/v1/tenants/{tenant}/usage'],
  // Web Push (docs/design.md: Web Push): devices registered with the user's own token, the
  // VAPID public key (no token). Always routed: with push off they answer so themselves.
  [apigwv2.HttpMethod.POST, '/v1/push/subscriptions'],
  [apigwv2.HttpMethod.DELETE, '/v1/push/subscriptions/{id}'],
  [apigwv2.HttpMethod.GET, '/v1/push/vapid-public-key'],
];

export interface SwitchboardStackProps extends cdk.StackProps {
  readonly config: SwitchboardConfig;
}

export class SwitchboardStack extends cdk.Stack {
  readonly table: dynamodb.Table;
  /** Recent messages per stream, for `resume` (docs/design.md: History and resume). */
  readonly historyTable: dynamodb.Table;
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly webSocketApi: apigwv2.WebSocketApi;
  readonly webSocketStage: apigwv2.WebSocketStage;
  readonly httpApi: apigwv2.HttpApi;
  readonly functions: Record<FunctionName, lambda.Function>;
  /** Events (docs/design.md: Events; lib/events.ts): the bus, its archive, the events queue, the stream's mapping. */
  readonly events: EventsResources;
  readonly alarmTopic: sns.ITopic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;
  /** CloudWatch namespace of the EMF metrics and of the log metric filter. */
  readonly metricsNamespace: string;

  constructor(scope: Construct, id: string, props: SwitchboardStackProps) {
    super(scope, id, props);
    const config = props.config;
    this.metricsNamespace = config.metricsNamespace ?? `Switchboard/${this.stackName}`;

    // ---- Parameters: the identity provider is chosen at deploy time -------------------
    // One key source: the JWKS URL parameter (with optional issuer/audience), or a
    // JWT_ISSUERS_FILE shipped as a layer (`jwtIssuersFile` context; then those three
    // parameters do not exist). Claim names are parameters either way (the issuers file's
    // per-issuer names override them).
    const tenantClaim = new cdk.CfnParameter(this, 'TenantClaim', {
      type: 'String',
      description: 'Claim holding the tenant id (TENANT_CLAIM), e.g. custom:tenant_id for Cognito',
      minLength: 1,
      default: config.parameterDefaults.tenantClaim,
    });
    const rolesClaim = new cdk.CfnParameter(this, 'RolesClaim', {
      type: 'String',
      description: 'Claim holding the roles, an array or space-separated string (ROLES_CLAIM)',
      minLength: 1,
      default: config.parameterDefaults.rolesClaim,
    });
    const logLevel = new cdk.CfnParameter(this, 'LogLevel', {
      type: 'String',
      description: 'RUST_LOG filter of every function',
      minLength: 1,
      default: config.parameterDefaults.logLevel,
    });
    const identityEnv: Record<string, string> = {
      ...(config.jwtIssuersFile ? { JWT_ISSUERS_FILE: ISSUERS_FILE_PATH } : this.singleKeySourceEnv(config)),
      TENANT_CLAIM: tenantClaim.valueAsString,
      ROLES_CLAIM: rolesClaim.valueAsString,
    };
    const issuersLayer = config.jwtIssuersFile
      ? new lambda.LayerVersion(this, 'JwtIssuers', {
          code: lambda.Code.fromAsset(stageIssuersFile(config.jwtIssuersFile)),
          compatibleArchitectures: [config.architecture],
          description: `Switchboard: JWT_ISSUERS_FILE at ${ISSUERS_FILE_PATH} and the JWKS files it names`,
        })
      : undefined;

    // ---- Roster table (docs/design.md: Roster) --------------------------------------------------------
    this.table = new dynamodb.Table(this, 'Roster', {
      tableName: config.rosterTableName,
      partitionKey: { name: 'PK', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'SK', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'expiresAt',
      // The events function reads every connection's INSERT and REMOVE (TTL deletions included).
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      // The roster is rebuilt by reconnecting clients, but keep it on stack deletion
      // anyway (CDK's default) so a mistaken `cdk destroy` loses no live state, and refuse
      // DeleteTable outright. The name is generated unless configured, so a redeploy after
      // `cdk destroy` does not collide with the retained table.
      removalPolicy: cdk.RemovalPolicy.RETAIN,
      deletionProtection: config.tableDeletionProtection,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: USER_INDEX,
      partitionKey: { name: 'GSI1PK', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'GSI1SK', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });

    // ---- History table (docs/design.md: History and resume) ------------------------------------------------------
    // A reconnect buffer: `PK` = the stream (`S#<tenant>#U#<user>`, `S#<tenant>`, `S#*`),
    // `SK` = the cursor; every history item expires after HISTORY_TTL_SECS (TTL `expiresAt`,
    // and the code filters expired items itself since TTL deletes lazily). No index: resume
    // is one Query per stream. Beside them: delivery receipts (docs/design.md: Receipts),
    // which expire after RECEIPT_TTL_SECS (default a day); usage buckets (`U#<tenant>`,
    // docs/design.md: Usage), kept USAGE_RETENTION_DAYS; Web Push devices (`D#<tenant>`,
    // lib/push.ts), kept PUSH_DEVICE_TTL_DAYS after their last registration; the work log
    // (`W#…`, docs/design.md: Fan-out at any size), which expires too; and, with events on,
    // each user's online state (`O#<tenant>`, docs/design.md: Events), one small item per user
    // without a TTL (a user's version must never start again from 0). No point-in-time
    // recovery: a restore would bring back expired or stale items (the cdk-nag acknowledgment
    // says so). Everything here either expires or describes this stack's own connections, so
    // a stack deletion deletes the table.
    this.historyTable = new dynamodb.Table(this, 'History', {
      tableName: config.historyTableName,
      partitionKey: { name: 'PK', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'SK', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'expiresAt',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: false },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
      deletionProtection: false,
    });

    // ---- Queues (docs/design.md: Publisher) --------------------------------------------------------------
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: cdk.Duration.days(14),
    });
    // A standard queue, and a fair one (docs/design.md: AWS deployment): every SendMessage of
    // publish-api and the publisher carries MessageGroupId = the message's tenant, which is all
    // SQS fair queues need: no queue attribute, no consumer change ("Amazon SQS fair queues",
    // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues.html).
    // Not FIFO: a group id there would serialize each tenant's messages.
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS guidance for SQS-triggered functions: at least 6× the function timeout.
      visibilityTimeout: cdk.Duration.seconds(6 * config.publisherTimeoutSecs),
      retentionPeriod: cdk.Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: 5 },
    });

    // ---- Functions -----------------------------------------------------------------------
    const fns = {} as Record<FunctionName, lambda.Function>;
    for (const name of FUNCTION_NAMES) {
      fns[name] = rustFunction(this, name, config, logLevel.valueAsString);
    }
    this.functions = fns;
    for (const fn of [fns.publisher, fns['publish-api']]) {
      fn.addEnvironment('METRICS_NAMESPACE', this.metricsNamespace);
      // Opt-in only: each listed tenant is billed as custom metrics of its own.
      if (config.metricsTenants.length > 0) fn.addEnvironment('METRICS_TENANTS', config.metricsTenants.join(','));
    }

    // Every function that verifies tokens: the authorizer ($connect), publish-api (bearer
    // tokens), default (in-band `refresh`, docs/design.md: Token expiry and refresh).
    for (const fn of [fns.authorizer, fns['publish-api'], fns.default]) {
      for (const [k, v] of Object.entries(identityEnv)) fn.addEnvironment(k, v);
      if (issuersLayer) fn.addLayers(issuersLayer);
    }
    for (const fn of [fns.connect, fns.disconnect, fns.publisher, fns['publish-api'], fns.default]) {
      fn.addEnvironment('ROSTER_TABLE', this.table.tableName);
    }
    // History (docs/design.md: History and resume): the publisher records, `default` serves `resume`.
    for (const fn of [fns.publisher, fns.default]) {
      fn.addEnvironment('HISTORY_TABLE', this.historyTable.tableName);
      fn.addEnvironment('HISTORY_TTL_SECS', String(config.historyTtlSecs));
    }
    // Receipts (docs/design.md: Receipts) live in the history table: the publish API creates and reads them, the
    // publisher adds each page's counts.
    fns['publish-api'].addEnvironment('HISTORY_TABLE', this.historyTable.tableName);
    for (const fn of [fns.publisher, fns['publish-api']]) {
      fn.addEnvironment('RECEIPT_TTL_SECS', String(config.receiptTtlSecs));
    }
    // Usage per tenant (docs/design.md: Usage) lives in the history table too: publish-api counts publishes and serves
    // GET …/usage, the publisher counts deliveries, connect/disconnect count connections.
    for (const fn of [fns.connect, fns.disconnect]) fn.addEnvironment('HISTORY_TABLE', this.historyTable.tableName);
    for (const fn of [fns.publisher, fns['publish-api'], fns.connect, fns.disconnect]) {
      fn.addEnvironment('USAGE_RETENTION_DAYS', String(config.usageRetentionDays));
    }
    // Web Push (docs/design.md: Web Push; lib/push.ts): the publisher sends, default and publish-api register
    // devices (on the history table); nothing is set while push is off.
    if (config.push) addPushEnvironment(fns, config.push);
    fns.default.addEnvironment('RESUME_MAX', String(config.resumeMax));
    fns.connect.addEnvironment('CONNECTION_TTL_SECS', String(config.connectionTtlSecs));
    // Tenant settings (docs/design.md: Tenants): TENANTS_FILE shipped as a layer (`tenantsFile`
    // context, checked here at synth) to the functions that enforce them.
    if (config.tenantsFile) {
      const tenantsLayer = new lambda.LayerVersion(this, 'TenantSettings', {
        code: lambda.Code.fromAsset(stageTenantsFile(config.tenantsFile)),
        compatibleArchitectures: [config.architecture],
        description: `Switchboard: TENANTS_FILE at ${TENANTS_FILE_PATH}`,
      });
      for (const name of TENANTS_FUNCTIONS) {
        fns[name].addLayers(tenantsLayer);
        fns[name].addEnvironment('TENANTS_FILE', TENANTS_FILE_PATH);
      }
    }

    // ---- WebSocket API -------------------------------------------------------------------
    // Identity source: none. API Gateway checks that every identity source is present
    // and non-empty and answers 401 *without calling the authorizer* otherwise. A client
    // may send its token either as `?token=` or as `Sec-WebSocket-Protocol: bearer, <jwt>`
    // (docs/design.md: Identity), and any one source would reject the other way. WebSocket REQUEST
    // authorizers have no result cache (caching is HTTP-API only), so the identity source
    // buys nothing but that presence check; the authorizer function does the real check
    // and answers "Unauthorized" (→ 401) when neither is present. CDK's construct defaults
    // to `route.request.header.Authorization`, so we pass [] and drop the property below
    // (CloudFormation documents it as optional for REQUEST authorizers).
    const authorizer = new WebSocketLambdaAuthorizer('JwtAuthorizer', fns.authorizer, {
      authorizerName: 'switchboard-jwt',
      identitySource: [],
    });
    this.webSocketApi = new apigwv2.WebSocketApi(this, 'WebSocketApi', {
      apiName: `${this.stackName}-ws`,
      description: 'Switchboard client connections',
      routeSelectionExpression: '$request.body.action',
      connectRouteOptions: {
        integration: new WebSocketLambdaIntegration('ConnectIntegration', fns.connect),
        authorizer,
      },
      disconnectRouteOptions: {
        integration: new WebSocketLambdaIntegration('DisconnectIntegration', fns.disconnect),
      },
      defaultRouteOptions: {
        integration: new WebSocketLambdaIntegration('DefaultIntegration', fns.default),
        // `$default` answers ping/whoami (and ends a resume with `resumed`) in its return
        // value, a route response; the frames a resume replays it posts to the caller
        // through the management API first.
        returnResponse: true,
      },
    });
    const cfnAuthorizers = this.node.findAll().filter((c): c is apigwv2.CfnAuthorizer => c instanceof apigwv2.CfnAuthorizer);
    if (cfnAuthorizers.length !== 1) throw new Error(`expected one WebSocket authorizer, found ${cfnAuthorizers.length}`);
    cfnAuthorizers[0].addPropertyDeletionOverride('IdentitySource');
    // Keep-alive (lib/keepalive.ts): `{"action":"ping"}` is answered by API Gateway (a MOCK
    // integration), never by a function.
    addPingRoute(this.webSocketApi);

    // Stage-level throttling (default route settings): every route, `$connect` and `ping`
    // included, so anonymous traffic cannot spend the account's shared request quota; sized
    // from `expectedConnections` (lib/sizing.ts).
    // Access logs need API Gateway's account-level CloudWatch Logs role: off by default so
    // that a first deploy works in a fresh account (see infra/README.md, first deploy).
    this.webSocketStage = new apigwv2.WebSocketStage(this, 'MainStage', {
      webSocketApi: this.webSocketApi,
      stageName: STAGE_NAME,
      autoDeploy: true,
      throttle: config.webSocketThrottle,
      accessLogSettings: config.webSocketAccessLogs
        ? {
            destination: new apigwv2.LogGroupLogDestination(
              new logs.LogGroup(this, 'WebSocketAccessLogs', { retention: logs.RetentionDays.ONE_MONTH }),
            ),
            format: apigw.AccessLogFormat.custom(
              JSON.stringify({
                requestId: apigw.AccessLogField.contextRequestId(),
                time: apigw.AccessLogField.contextRequestTime(),
                eventType: apigw.AccessLogField.contextEventType(),
                routeKey: apigw.AccessLogField.contextRouteKey(),
                connectionId: apigw.AccessLogField.contextConnectionId(),
                status: apigw.AccessLogField.contextStatus(),
                ip: apigw.AccessLogField.contextIdentitySourceIp(),
                error: apigw.AccessLogField.contextErrorMessage(),
              }),
            ),
          }
        : undefined,
    });
    if (config.createApiGatewayLogsRole) {
      const account = this.apiGatewayLogsRole();
      if (config.webSocketAccessLogs) this.webSocketStage.node.addDependency(account);
    }

    // ---- Publisher -------------------------------------------------------------------------
    const callbackUrl = this.webSocketStage.callbackUrl;
    fns.publisher.addEnvironment('CALLBACK_URL', callbackUrl);
    fns.default.addEnvironment('CALLBACK_URL', callbackUrl);
    fns.publisher.addEnvironment('DLQ_URL', this.deadLetterQueue.queueUrl);
    fns.publisher.addEnvironment('FANOUT_CONCURRENCY', String(config.fanoutConcurrency));
    fns.publisher.addEnvironment('SCAN_SEGMENTS', String(config.scanSegments));
    fns.publisher.addEnvironment('LEGACY_BROADCAST', String(config.legacyBroadcast));
    // Fan-out at any size (docs/design.md: Fan-out at any size): work items go back on the same queue.
    fns.publisher.addEnvironment('QUEUE_URL', this.queue.queueUrl);
    fns.publisher.addEnvironment('FANOUT_SHARD_SIZE', String(config.fanoutShardSize));
    fns.publisher.addEnvironment('GONE_GRACE_SECS', String(config.goneGraceSecs));
    // One budget of PostToConnection calls per second: at most `publisherMaxConcurrency`
    // publishers run at once, each limited to FANOUT_RATE = floor(budget / maxConcurrency),
    // so all of them together never exceed the budget (infra/README.md, rate budget).
    fns.publisher.addEnvironment('FANOUT_RATE', String(fanoutRate(config)));
    fns.publisher.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: 10,
        reportBatchItemFailures: true,
        maxConcurrency: config.publisherMaxConcurrency,
      }),
    );

    // ---- HTTP publish API (docs/design.md: Publish API) ---------------------------------------------------------
    fns['publish-api'].addEnvironment('QUEUE_URL', this.queue.queueUrl);
    this.httpApi = new apigwv2.HttpApi(this, 'PublishHttpApi', {
      apiName: `${this.stackName}-publish`,
      description: 'Switchboard publish API (POST /v1/messages), presence (GET …/presence) and usage (GET …/usage)',
      createDefaultStage: false,
    });
    // One integration (one Lambda proxy) for every route; each route gets its own invoke
    // permission, scoped to its method and path.
    const publishIntegration = new HttpLambdaIntegration('PublishIntegration', fns['publish-api']);
    for (const [method, routePath] of PUBLISH_API_ROUTES) {
      this.httpApi.addRoutes({ path: routePath, methods: [method], integration: publishIntegration });
    }
    // HTTP API access logs need no account-level role (unlike WebSocket and REST APIs).
    const httpAccessLogs = new logs.LogGroup(this, 'PublishHttpApiAccessLogs', { retention: logs.RetentionDays.ONE_MONTH });
    new apigwv2.HttpStage(this, 'PublishStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: config.publishThrottle,
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(httpAccessLogs),
        format: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: apigw.AccessLogField.contextRequestId(),
            time: apigw.AccessLogField.contextRequestTime(),
            method: apigw.AccessLogField.contextHttpMethod(),
            routeKey: apigw.AccessLogField.contextRouteKey(),
            status: apigw.AccessLogField.contextStatus(),
            responseLength: apigw.AccessLogField.contextResponseLength(),
            ip: apigw.AccessLogField.contextIdentitySourceIp(),
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });

    grantLeastPrivilege(this, config);
    this.events = createEvents(this, config.events);

    // ---- Alarms, one topic, dashboard -----------------------------------------------------------
    this.alarmTopic = createAlarmTopic(this, config);
    createAlarms(this, config);
    this.dashboard = createDashboard(this, config);

    // ---- Outputs -------------------------------------------------------------------------------
    new cdk.CfnOutput(this, 'WebSocketUrl', {
      description: 'Clients connect here: wss://…/main?token=<jwt> or subprotocols "bearer, <jwt>"',
      value: this.webSocketStage.url,
    });
    new cdk.CfnOutput(this, 'PublishUrl', {
      description: 'POST envelopes here with Authorization: Bearer <jwt>',
      value: `${this.httpApi.apiEndpoint}/v1/messages`,
    });
    new cdk.CfnOutput(this, 'PresenceUrl', {
      description:
        'GET <this> (an admin\'s tenants), <this>/<tenant>/presence, <this>/<tenant>/presence/summary, <this>/<tenant>/users/<user>/presence or <this>/<tenant>/usage?from=&to= with Authorization: Bearer <jwt>',
      value: `${this.httpApi.apiEndpoint}/v1/tenants`,
    });
    new cdk.CfnOutput(this, 'ConsoleCommand', {
      description: 'The operator console on your machine, forwarding to this stack (README.md: Operate it from a browser)',
      value: `switchboard console --api ${this.httpApi.apiEndpoint} --websocket ${this.webSocketStage.url}`,
    });
    new cdk.CfnOutput(this, 'QueueUrl', { description: 'SQS queue for envelopes (QUEUE_URL)', value: this.queue.queueUrl });
    new cdk.CfnOutput(this, 'DeadLetterQueueUrl', { description: 'Dead-letter queue (DLQ_URL)', value: this.deadLetterQueue.queueUrl });
    new cdk.CfnOutput(this, 'CallbackUrl', { description: 'Management API base URL (CALLBACK_URL)', value: callbackUrl });
    new cdk.CfnOutput(this, 'TableName', { description: 'Roster table (ROSTER_TABLE)', value: this.table.tableName });
    new cdk.CfnOutput(this, 'HistoryTableName', { description: 'History table (HISTORY_TABLE)', value: this.historyTable.tableName });
    new cdk.CfnOutput(this, 'AlarmTopicArn', { description: 'SNS topic every alarm notifies', value: this.alarmTopic.topicArn });
    new cdk.CfnOutput(this, 'DashboardName', { description: 'CloudWatch dashboard', value: this.dashboard.dashboardName });
    new cdk.CfnOutput(this, 'MetricsNamespace', { description: 'CloudWatch namespace of the EMF metrics', value: this.metricsNamespace });

    nagAcknowledgments(this, config);
  }

  /**
   * API Gateway's account-level CloudWatch Logs role (one per account and Region), which
   * WebSocket access logging needs. Both the role and the account setting are retained on
   * stack deletion: deleting the role would leave the Region's setting pointing at nothing
   * and break access logging of every API there.
   */
  private apiGatewayLogsRole(): apigw.CfnAccount {
    const role = new iam.Role(this, 'ApiGatewayLogsRole', {
      assumedBy: new iam.ServicePrincipal('apigateway.amazonaws.com'),
      description: "API Gateway's account-wide CloudWatch Logs role (retained: other APIs of the Region may use it)",
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
    });
    role.applyRemovalPolicy(cdk.RemovalPolicy.RETAIN);
    const account = new apigw.CfnAccount(this, 'ApiGatewayAccount', { cloudWatchRoleArn: role.roleArn });
    account.applyRemovalPolicy(cdk.RemovalPolicy.RETAIN);
    Validations.of(role).acknowledge({
      id: 'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason:
        "API Gateway's account-wide logging role must be able to write to any access-log group of any API in the region; the AWS managed policy is the documented one for it.",
    });
    return account;
  }

  /** An EMF metric summed over every target type (the documents' empty dimension set). */
  emfMetric(name: string, options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.metricsNamespace,
      metricName: name,
      period: cdk.Duration.minutes(1),
      statistic: cloudwatch.Stats.SUM,
      ...options,
    });
  }

  /**
   * The single key source: the `JwtJwksUrl` parameter, with `JwtIssuer` and `JwtAudience`
   * (an empty one leaves its variable out: "not checked", docs/design.md: Identity).
   */
  private singleKeySourceEnv(config: SwitchboardConfig): Record<string, string> {
    const jwksUrl = new cdk.CfnParameter(this, 'JwtJwksUrl', {
      type: 'String',
      description: 'JWKS URL of the identity provider (JWT_JWKS_URL), e.g. https://cognito-idp.<region>.amazonaws.com/<poolId>/.well-known/jwks.json',
      allowedPattern: '^https://\\S+$',
      constraintDescription: 'must be an https:// URL',
      default: config.parameterDefaults.jwtJwksUrl,
    });
    const issuer = new cdk.CfnParameter(this, 'JwtIssuer', {
      type: 'String',
      description: 'Required iss claim (JWT_ISSUER); empty: iss is not checked',
      default: config.parameterDefaults.jwtIssuer,
    });
    const audience = new cdk.CfnParameter(this, 'JwtAudience', {
      type: 'String',
      description: 'Required aud claim (JWT_AUDIENCE); empty: aud is not checked',
      default: config.parameterDefaults.jwtAudience,
    });
    const hasIssuer = new cdk.CfnCondition(this, 'HasJwtIssuer', {
      expression: cdk.Fn.conditionNot(cdk.Fn.conditionEquals(issuer.valueAsString, '')),
    });
    const hasAudience = new cdk.CfnCondition(this, 'HasJwtAudience', {
      expression: cdk.Fn.conditionNot(cdk.Fn.conditionEquals(audience.valueAsString, '')),
    });
    return {
      JWT_JWKS_URL: jwksUrl.valueAsString,
      JWT_ISSUER: cdk.Fn.conditionIf(hasIssuer.logicalId, issuer.valueAsString, cdk.Aws.NO_VALUE).toString(),
      JWT_AUDIENCE: cdk.Fn.conditionIf(hasAudience.logicalId, audience.valueAsString, cdk.Aws.NO_VALUE).toString(),
    };
  }
}
