// The whole AWS deployment of Switchboard (docs/design.md: AWS deployment) in one stack:
//
//   clients ──wss──▶ WebSocket API (stage main) ──$connect──▶ authorizer ─▶ connect ─▶ roster (DynamoDB)
//                                              ──$disconnect─▶ disconnect ─▶ roster
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
//
// Operations: alarms to one SNS topic (output `AlarmTopicArn`), a CloudWatch dashboard,
// EMF metrics from the publisher and the publish API (namespace METRICS_NAMESPACE), stage
// throttling on both APIs, X-Ray active tracing. See infra/README.md for each choice.
//
// Lambda code: plain `lambda.Code.fromAsset(<lambdaDir>/<name>/bootstrap.zip)` of the zips
// `cargo lambda build --release --output-format zip` writes, not `cargo-lambda-cdk`'s
// RustFunction: synthesis then needs neither cargo, cargo-lambda, Zig nor Docker, works
// offline, is fast enough for unit tests, and builds the Rust code exactly once (in CI or
// by the developer) instead of once per `cdk synth`.
//
// IAM: every function gets its own role with explicit statements (exact actions, exact
// resources) instead of `grant*` helpers that add wildcard actions, and no AWS managed
// policy: logging is `logs:CreateLogStream`/`logs:PutLogEvents` on the function's own
// log group (whose ARN attribute ends in `:*`, the log-stream part, a CloudFormation
// attribute rather than a literal wildcard in our policy).

import * as cdk from 'aws-cdk-lib';
import { Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration, WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as fs from 'fs';
import * as path from 'path';
import { Construct } from 'constructs';
import { fanoutRate, FUNCTION_NAMES, FunctionName, SwitchboardConfig } from './config';
import { addConnectAlarms } from './connect-alarms';
import { bootstrapArchitecture, ElfArchitecture } from './elf';
import { ISSUERS_FILE_PATH, stageIssuersFile } from './issuers';
import { stageTenantsFile, TENANTS_FILE_PATH, TENANTS_FUNCTIONS } from './tenants';

/** The WebSocket stage; part of every client URL and of CALLBACK_URL. */
export const STAGE_NAME = 'main';
/** The roster's user index (docs/design.md: Roster). */
export const USER_INDEX = 'byUser';
/** The HTTP publish API's routes, all served by `publish-api` (docs/design.md: Publish API; Presence; Usage). */
export const PUBLISH_API_ROUTES: ReadonlyArray<readonly [apigwv2.HttpMethod, string]> = [
  [apigwv2.HttpMethod.POST, '/v1/messages'],
  [apigwv2.HttpMethod.GET, '/v1/messages/{id}'],
  [apigwv2.HttpMethod.GET, '/v1/tenants/{tenant}/presence'],
  [apigwv2.HttpMethod.GET, '/v1/tenants/{tenant}/users/{user}/presence'],
  [apigwv2.HttpMethod.GET, '/v1/tenants/{tenant}/usage'],
];
/**
 * The partition keys of usage items in the history table (docs/design.md: Usage): `U#<tenant|*>`. The
 * functions that touch the history table for usage only are limited to them (`dynamodb:LeadingKeys`).
 */
export const USAGE_KEY_PATTERN = 'U#*';
/** The target types the EMF documents name in their `Target` dimension. */
export const TARGET_TYPES = ['users', 'tenant', 'connections', 'broadcast'] as const;

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

export interface SwitchboardStackProps extends cdk.StackProps {
  readonly config: SwitchboardConfig;
}

/** Per-function settings that differ; everything else is shared. */
const FUNCTION_SETTINGS: Record<FunctionName, { memory: number; timeoutSecs?: number; description: string }> = {
  authorizer: { memory: 256, timeoutSecs: 10, description: 'Switchboard: verifies the JWT on $connect (REQUEST authorizer)' },
  connect: { memory: 256, timeoutSecs: 10, description: 'Switchboard: $connect, writes the roster item and counts usage' },
  disconnect: { memory: 256, timeoutSecs: 10, description: 'Switchboard: $disconnect, deletes the roster item and counts usage' },
  // Timeout: `defaultTimeoutSecs` (≤ 28 s: the `$default` integration times out at 29 s).
  default: { memory: 256, description: 'Switchboard: $default, answers ping / whoami / resume / refresh / unknown_action' },
  publisher: { memory: 512, description: 'Switchboard: SQS-triggered fan-out to the connections' },
  'publish-api': { memory: 256, timeoutSecs: 15, description: 'Switchboard: POST /v1/messages (validates and enqueues), receipts, presence and usage reads' },
};

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
    const tableArn = this.table.tableArn;
    const userIndexArn = `${tableArn}/index/${USER_INDEX}`;

    // ---- History table (docs/design.md: History and resume) ------------------------------------------------------
    // A reconnect buffer: `PK` = the stream (`S#<tenant>#U#<user>`, `S#<tenant>`, `S#*`),
    // `SK` = the cursor; every item expires after HISTORY_TTL_SECS (TTL `expiresAt`, and
    // the code filters expired items itself since TTL deletes lazily). No index: resume
    // is one Query per stream. No point-in-time recovery: a restore would bring back a
    // few minutes of already-delivered messages, past their retention (the cdk-nag
    // acknowledgment says so). Nothing in it outlives HISTORY_TTL_SECS, so a stack
    // deletion deletes it.
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
    const historyArn = this.historyTable.tableArn;

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
      fns[name] = this.rustFunction(name, config, logLevel.valueAsString);
    }
    this.functions = fns;
    for (const fn of [fns.publisher, fns['publish-api']]) {
      fn.addEnvironment('METRICS_NAMESPACE', this.metricsNamespace);
      // Opt-in only: each listed tenant is billed as custom metrics of its own.
      if (config.metricsTenants.length > 0) fn.addEnvironment('METRICS_TENANTS', config.metricsTenants.join(','));
    }

    // Every function that verifies tokens: the authorizer ($connect), publish-api (bearer
    // tokens), default (in-band `refresh`, docs/design.md: Identity per issuer).
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

    // Stage-level throttling (default route settings): every route, `$connect` included,
    // so anonymous traffic cannot spend the account's shared request quota.
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

    // ---- Least-privilege IAM (docs/design.md: AWS deployment) ------------------------------------------------------
    fns.connect.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'RosterPut', actions: ['dynamodb:PutItem'], resources: [tableArn] }),
    );
    // Connection caps (tenant settings only): `$connect` counts the tenant's connections
    // (Query, Select=COUNT, on the table) and the user's (on byUser) before its PutItem.
    if (config.tenantsFile) {
      fns.connect.addToRolePolicy(
        new iam.PolicyStatement({ sid: 'RosterCount', actions: ['dynamodb:Query'], resources: [tableArn] }),
      );
      fns.connect.addToRolePolicy(
        new iam.PolicyStatement({ sid: 'RosterCountByUser', actions: ['dynamodb:Query'], resources: [userIndexArn] }),
      );
    }
    fns.disconnect.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'RosterDelete', actions: ['dynamodb:DeleteItem'], resources: [tableArn] }),
    );
    // Usage (docs/design.md: Usage), on usage keys only: `$connect` adds 1 to the tenant's live counter (UpdateItem
    // ADD) and raises the minute's peak (a conditional UpdateItem); `$disconnect` takes 1 off and adds the
    // connection's minutes (UpdateItem ADD). Two UpdateItems each.
    const onUsageKeys = { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [USAGE_KEY_PATTERN] } };
    for (const fn of [fns.connect, fns.disconnect]) {
      fn.addToRolePolicy(
        new iam.PolicyStatement({ sid: 'UsageCount', actions: ['dynamodb:UpdateItem'], resources: [historyArn], conditions: onUsageKeys }),
      );
    }
    fns.publisher.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'RosterRead',
        actions: ['dynamodb:Query', 'dynamodb:Scan', 'dynamodb:BatchGetItem', 'dynamodb:DeleteItem'],
        resources: [tableArn],
      }),
    );
    fns.publisher.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'RosterQueryByUser', actions: ['dynamodb:Query'], resources: [userIndexArn] }),
    );
    const manageConnectionsArn = this.formatArn({
      service: 'execute-api',
      resource: this.webSocketApi.apiId,
      resourceName: `${STAGE_NAME}/POST/@connections/*`,
    });
    fns.publisher.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'PostToConnections',
        actions: ['execute-api:ManageConnections'],
        resources: [manageConnectionsArn],
      }),
    );
    // DeleteConnection: the publisher ends connections whose token expired.
    const deleteConnectionsArn = this.formatArn({
      service: 'execute-api',
      resource: this.webSocketApi.apiId,
      resourceName: `${STAGE_NAME}/DELETE/@connections/*`,
    });
    fns.publisher.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'CloseExpiredConnections',
        actions: ['execute-api:ManageConnections'],
        resources: [deleteConnectionsArn],
      }),
    );
    fns.publisher.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'ContinueFanout', actions: ['sqs:SendMessage'], resources: [this.queue.queueArn] }),
    );
    fns.publisher.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'DeadLetter',
        actions: ['sqs:SendMessage'],
        resources: [this.deadLetterQueue.queueArn],
      }),
    );
    fns.publisher.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'HistoryWrite', actions: ['dynamodb:BatchWriteItem'], resources: [historyArn] }),
    );
    // Receipts: one UpdateItem (ADD) per page, creating the receipt of a body sent straight to SQS. Usage (docs/design.md:
    // Usage) uses it too: one UpdateItem (ADD) per tenant per unit of work (matched, delivered, gone, bytesSent).
    fns.publisher.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'ReceiptUpdate', actions: ['dynamodb:UpdateItem'], resources: [historyArn] }),
    );
    // The work log (docs/design.md, "Fan-out at any size"): a conditional PutItem claims a unit (GetItem reads the
    // claim it lost to), PutItem marks it done, a conditional DeleteItem gives a claim back.
    fns.publisher.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'WorkLog',
        actions: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem'],
        resources: [historyArn],
      }),
    );
    fns['publish-api'].addToRolePolicy(
      new iam.PolicyStatement({ sid: 'Enqueue', actions: ['sqs:SendMessage'], resources: [this.queue.queueArn] }),
    );
    // Receipts: the conditional PutItem of idempotent publish, GetItem for GET /v1/messages/{id}, the conditional
    // DeleteItem that takes a receipt back when the enqueue failed.
    fns['publish-api'].addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'Receipts',
        actions: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem'],
        resources: [historyArn],
      }),
    );
    // Presence (docs/design.md: Presence): Query only, never Scan.
    fns['publish-api'].addToRolePolicy(
      new iam.PolicyStatement({ sid: 'PresenceQuery', actions: ['dynamodb:Query'], resources: [tableArn] }),
    );
    fns['publish-api'].addToRolePolicy(
      new iam.PolicyStatement({ sid: 'PresenceQueryByUser', actions: ['dynamodb:Query'], resources: [userIndexArn] }),
    );
    // Usage (docs/design.md: Usage), on usage keys only: one UpdateItem (ADD) per counted publish; GET …/usage is one
    // consistent Query on `U#<tenant>` (every page).
    fns['publish-api'].addToRolePolicy(
      new iam.PolicyStatement({ sid: 'UsageCount', actions: ['dynamodb:UpdateItem'], resources: [historyArn], conditions: onUsageKeys }),
    );
    fns['publish-api'].addToRolePolicy(
      new iam.PolicyStatement({ sid: 'UsageRead', actions: ['dynamodb:Query'], resources: [historyArn], conditions: onUsageKeys }),
    );
    // default: `resume` reads the caller's streams and posts the missed frames to it.
    fns.default.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'HistoryRead', actions: ['dynamodb:Query'], resources: [historyArn] }),
    );
    // default: a `refresh` moves the caller's `tokenExpiresAt` (UpdateItem, conditional on
    // the item existing).
    fns.default.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'RosterTokenExpiry', actions: ['dynamodb:UpdateItem'], resources: [tableArn] }),
    );
    fns.default.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'PostToCaller',
        actions: ['execute-api:ManageConnections'],
        resources: [manageConnectionsArn],
      }),
    );
    // authorizer: logging only.

    // ---- Alarms, one topic, dashboard -----------------------------------------------------------
    this.alarmTopic = this.createAlarmTopic(config);
    this.createAlarms(config);
    this.dashboard = this.createDashboard(config);

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
        'GET <this>/<tenant>/presence, <this>/<tenant>/users/<user>/presence or <this>/<tenant>/usage?from=&to= with Authorization: Bearer <jwt>',
      value: `${this.httpApi.apiEndpoint}/v1/tenants`,
    });
    new cdk.CfnOutput(this, 'QueueUrl', { description: 'SQS queue for envelopes (QUEUE_URL)', value: this.queue.queueUrl });
    new cdk.CfnOutput(this, 'DeadLetterQueueUrl', { description: 'Dead-letter queue (DLQ_URL)', value: this.deadLetterQueue.queueUrl });
    new cdk.CfnOutput(this, 'CallbackUrl', { description: 'Management API base URL (CALLBACK_URL)', value: callbackUrl });
    new cdk.CfnOutput(this, 'TableName', { description: 'Roster table (ROSTER_TABLE)', value: this.table.tableName });
    new cdk.CfnOutput(this, 'HistoryTableName', { description: 'History table (HISTORY_TABLE)', value: this.historyTable.tableName });
    new cdk.CfnOutput(this, 'AlarmTopicArn', { description: 'SNS topic every alarm notifies', value: this.alarmTopic.topicArn });
    new cdk.CfnOutput(this, 'DashboardName', { description: 'CloudWatch dashboard', value: this.dashboard.dashboardName });
    new cdk.CfnOutput(this, 'MetricsNamespace', { description: 'CloudWatch namespace of the EMF metrics', value: this.metricsNamespace });

    this.nagAcknowledgments(config);
  }

  /** One Rust function from its `cargo lambda` zip, with its own role and log group. */
  private rustFunction(name: FunctionName, config: SwitchboardConfig, rustLog: string): lambda.Function {
    const zip = path.join(config.lambdaDir, name, 'bootstrap.zip');
    if (!fs.existsSync(zip)) {
      throw new Error(
        `missing ${zip}: build the functions first with ` +
          '`cargo lambda build --release --output-format zip` (add --arm64 with -c architecture=arm64), ' +
          'or point -c lambdaDir=<dir> at a folder holding <name>/bootstrap.zip',
      );
    }
    const expected: ElfArchitecture = config.architecture === lambda.Architecture.ARM_64 ? 'arm64' : 'x86_64';
    const built = bootstrapArchitecture(zip);
    if (built !== expected) {
      throw new Error(
        `${zip} holds a bootstrap built for ${built}, but the stack deploys ${expected} functions: ` +
          (expected === 'arm64'
            ? 'build with `cargo lambda build --release --arm64 --output-format zip`'
            : 'build with `cargo lambda build --release --x86-64 --output-format zip`') +
          ` or synthesize with -c architecture=${built}`,
      );
    }
    const id = pascal(name);
    const settings = FUNCTION_SETTINGS[name];
    // Recursive loop detection: the publisher sends continuation, retry and remainder work
    // items to the queue that triggers it, and the SDK forwards the invocation's trace
    // header on each SendMessage, so Lambda counts the hops and, with the default
    // `RecursiveLoop: Terminate`, stops the chain after about 16 ("Use Lambda recursive
    // loop detection to prevent infinite loops",
    // https://docs.aws.amazon.com/lambda/latest/dg/invocation-recursion.html): a fan-out of
    // more than ~16 pages would be cut off. The publisher alone opts out (`Allow`, CloudFormation
    // AWS::Lambda::Function.RecursiveLoop) and bounds its chains itself: every work item
    // carries a hop count and is dead-lettered past a bound derived from the configuration
    // (docs/design.md). Every other function keeps Lambda's default.

    const logGroup = new logs.LogGroup(this, `${id}Logs`, { retention: logs.RetentionDays.ONE_MONTH });
    const role = new iam.Role(this, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Switchboard ${name} function`,
    });
    logGroup.grantWrite(role);
    return new lambda.Function(this, `${id}Function`, {
      description: settings.description,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: config.architecture,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(zip),
      memorySize: settings.memory,
      timeout: cdk.Duration.seconds(
        name === 'default' ? config.defaultTimeoutSecs : (settings.timeoutSecs ?? config.publisherTimeoutSecs),
      ),
      role,
      logGroup,
      environment: { RUST_LOG: rustLog },
      tracing: config.tracing ? lambda.Tracing.ACTIVE : undefined,
      recursiveLoop: name === 'publisher' ? lambda.RecursiveLoop.ALLOW : undefined,
    });
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

  /** The stack's own topic (or the one given by `alarmTopicArn`), with an optional e-mail subscriber. */
  private createAlarmTopic(config: SwitchboardConfig): sns.ITopic {
    if (config.alarmTopicArn) {
      if (config.alarmEmail) throw new Error('context alarmEmail subscribes to the stack\'s own topic: drop it or alarmTopicArn');
      return sns.Topic.fromTopicArn(this, 'AlarmTopic', config.alarmTopicArn);
    }
    const topic = new sns.Topic(this, 'AlarmTopic', { displayName: `${this.stackName} alarms`, enforceSSL: true });
    if (config.alarmEmail) topic.addSubscription(new subscriptions.EmailSubscription(config.alarmEmail));
    return topic;
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

  /**
   * Alarms that mean trouble, each to the one topic. Not the authorizer's `Errors`: every
   * rejected token is one (its `Unauthorized` is an error by design), so anyone could page
   * the operator; a metric filter on the log lines that mean "no key to verify with" instead,
   * and the alarms of lib/connect-alarms.ts for an authorizer or integration that is down.
   */
  private createAlarms(config: SwitchboardConfig): void {
    const fns = this.functions;
    const alarm = (id: string, props: Omit<cloudwatch.AlarmProps, 'evaluationPeriods'> & { evaluationPeriods?: number }) => {
      const a = new cloudwatch.Alarm(this, id, {
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        ...props,
        evaluationPeriods: props.evaluationPeriods ?? 1,
      });
      a.addAlarmAction(new cwActions.SnsAction(this.alarmTopic));
      this.alarms.push(a);
      return a;
    };
    alarm('DeadLetterQueueDepth', {
      alarmDescription: 'Switchboard: messages in the dead-letter queue (malformed bodies or 5 failed receives)',
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: cdk.Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    alarm('QueueOldestMessageAge', {
      alarmDescription: `Switchboard: the oldest queued message waits more than ${config.queueAgeAlarmSecs} s (publishers behind or failing)`,
      metric: this.queue.metricApproximateAgeOfOldestMessage({ period: cdk.Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: config.queueAgeAlarmSecs,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
    });
    for (const name of ['connect', 'disconnect', 'default', 'publisher', 'publish-api'] as const) {
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
      metric: this.emfMetric('Throttled'),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
    });
    alarm('PublishApi5xx', {
      alarmDescription: 'Switchboard: the publish API answered 5xx (enqueue failures, function errors or timeouts)',
      metric: this.httpApi.metricServerError({ period: cdk.Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    // Key source unusable: a metric filter on the exact log messages, on every verifier.
    for (const name of ['authorizer', 'default', 'publish-api'] as const) {
      new logs.MetricFilter(this, `${pascal(name)}AuthConfigFailures`, {
        logGroup: fns[name].logGroup as logs.ILogGroup,
        metricNamespace: this.metricsNamespace,
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
      metric: this.emfMetric('AuthConfigFailures', { period: cdk.Duration.minutes(5) }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    addConnectAlarms(this, {
      authorizer: fns.authorizer,
      webSocketApiId: this.webSocketApi.apiId,
      stageName: STAGE_NAME,
      metricsNamespace: this.metricsNamespace,
      alarm,
    });
  }

  /** One page: publisher EMF metrics, the queues, both APIs, the functions, the alarms. */
  private createDashboard(config: SwitchboardConfig): cloudwatch.Dashboard {
    const fns = this.functions;
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${this.stackName}-${cdk.Aws.REGION}`,
      defaultInterval: cdk.Duration.hours(3),
    });
    const byTarget = (metric: string) =>
      TARGET_TYPES.map((t) => this.emfMetric(metric, { dimensionsMap: { Target: t }, label: t }));
    const ws = (metricName: string, statistic: string = cloudwatch.Stats.SUM) =>
      new cloudwatch.Metric({
        namespace: 'AWS/ApiGateway',
        metricName,
        dimensionsMap: { ApiId: this.webSocketApi.apiId, Stage: STAGE_NAME },
        period: cdk.Duration.minutes(1),
        statistic,
      });
    const graph = (title: string, left: cloudwatch.IMetric[], extra: Partial<cloudwatch.GraphWidgetProps> = {}) =>
      new cloudwatch.GraphWidget({ title, left, width: 8, height: 6, ...extra });
    dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown: `# ${this.stackName}\nFan-out budget ${config.postBudgetPerSecond} posts/s = ${config.publisherMaxConcurrency} publishers × FANOUT_RATE ${fanoutRate(config)}. EMF namespace \`${this.metricsNamespace}\`.`,
        width: 24,
        height: 2,
      }),
    );
    dashboard.addWidgets(
      graph('Posts per minute', ['Delivered', 'Gone', 'Failed', 'Throttled', 'Retries'].map((m) => this.emfMetric(m, { label: m }))),
      graph('Delivered by target type', byTarget('Delivered')),
      graph('Fan-out duration per message (ms)', [
        this.emfMetric('FanoutDuration', { statistic: cloudwatch.Stats.p(50), label: 'p50' }),
        this.emfMetric('FanoutDuration', { statistic: cloudwatch.Stats.p(99), label: 'p99' }),
        this.emfMetric('FanoutDuration', { statistic: cloudwatch.Stats.MAXIMUM, label: 'max' }),
      ]),
    );
    dashboard.addWidgets(
      graph('Queue depth', [
        this.queue.metricApproximateNumberOfMessagesVisible({ period: cdk.Duration.minutes(1), label: 'queue visible' }),
        this.queue.metricApproximateNumberOfMessagesNotVisible({ period: cdk.Duration.minutes(1), label: 'queue in flight' }),
        this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: cdk.Duration.minutes(1), label: 'DLQ' }),
      ]),
      graph(
        'Oldest queued message (s)',
        [this.queue.metricApproximateAgeOfOldestMessage({ period: cdk.Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM })],
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
      graph('Publish API (EMF)', ['Requests', 'Accepted', 'ClientErrors', 'ServerErrors'].map((m) => this.emfMetric(m, { label: m }))),
      graph('Publish API (API Gateway)', [
        this.httpApi.metricCount({ period: cdk.Duration.minutes(1), label: 'requests' }),
        this.httpApi.metricClientError({ period: cdk.Duration.minutes(1), label: '4xx' }),
        this.httpApi.metricServerError({ period: cdk.Duration.minutes(1), label: '5xx' }),
      ], { right: [this.httpApi.metricLatency({ period: cdk.Duration.minutes(1), statistic: cloudwatch.Stats.p(99), label: 'p99 latency' })] }),
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
    dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 4 }));
    return dashboard;
  }

  /**
   * Every cdk-nag finding we accept, with its reason, acknowledged on the one resource it
   * is about (cdk-nag v3 uses CDK's own `Validations.of(construct).acknowledge`).
   */
  private nagAcknowledgments(config: SwitchboardConfig): void {
    if (config.tracing) {
      for (const name of FUNCTION_NAMES) {
        Validations.of(this.functions[name].role!).acknowledge({
          id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
          reason:
            'X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions, so Resource must be * (the statement CDK adds with Tracing.ACTIVE; opt out with -c tracing=false).',
        });
      }
    }
    if (!config.webSocketAccessLogs) {
      Validations.of(this.webSocketStage).acknowledge({
        id: 'AwsSolutions::AwsSolutions-APIG1',
        reason:
          "WebSocket access logs need the account-wide API Gateway CloudWatch Logs role, which a fresh account lacks; they are off by default so the first deploy succeeds, and on with -c webSocketAccessLogs=true after the one-time step in infra/README.md. Lambda logs every connect, disconnect and message meanwhile.",
      });
    }
    Validations.of(this.historyTable).acknowledge({
      id: 'AwsSolutions::AwsSolutions-DDB3',
      reason:
        'The history table is a reconnect buffer (docs/design.md: History and resume): every item expires after HISTORY_TTL_SECS (default 5 minutes) and was already delivered, and the delivery receipts beside it (docs/design.md: Receipts) are reports that expire after RECEIPT_TTL_SECS (default a day); a point-in-time restore could only bring back expired or stale items, so continuous backups would cost money for nothing. The usage buckets beside them (docs/design.md: Usage, kept USAGE_RETENTION_DAYS) are best-effort counts that may undercount by design; whoever bills from them reads them out through GET …/usage.',
    });
    const routes = this.webSocketApi.node.findAll().filter((c): c is apigwv2.CfnRoute => c instanceof apigwv2.CfnRoute);
    for (const route of routes) {
      const key = this.resolve(route.routeKey);
      if (key === '$disconnect' || key === '$default') {
        Validations.of(route).acknowledge({
          id: 'AwsSolutions::AwsSolutions-APIG4',
          reason:
            'WebSocket APIs authorize only on $connect (API Gateway allows an authorizer on no other route); $disconnect and $default run on connections that $connect already authorized, with the identity the authorizer returned.',
        });
      }
    }
    const httpRoutes = this.httpApi.node.findAll().filter((c): c is apigwv2.CfnRoute => c instanceof apigwv2.CfnRoute);
    for (const route of httpRoutes) {
      Validations.of(route).acknowledge({
        id: 'AwsSolutions::AwsSolutions-APIG4',
        reason:
          'The publish API (POST /v1/messages, GET /v1/messages/{id}, GET …/presence, GET …/usage) is authorized by the publish-api function itself (docs/design.md: Publish API; Presence; Usage): it verifies the bearer JWT with the same code as the WebSocket authorizer and also enforces role and tenant rules, answering 401/403 as JSON.',
      });
    }
    const apiLogicalId = this.resolve((this.webSocketApi.node.defaultChild as apigwv2.CfnApi).logicalId);
    for (const name of ['publisher', 'default'] as const) {
      Validations.of(this.functions[name].role!).acknowledge({
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiLogicalId}>/${STAGE_NAME}/POST/@connections/*]`,
        reason:
          'Posting to a WebSocket client needs execute-api:ManageConnections on arn:…:<this API id>/main/POST/@connections/<connectionId>; connection ids are unknown in advance, so the last path segment is a wildcard (API, stage and method are fixed).',
      });
    }
    Validations.of(this.functions.publisher.role!).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiLogicalId}>/${STAGE_NAME}/DELETE/@connections/*]`,
      reason:
        'Closing a connection whose token expired needs execute-api:ManageConnections on arn:…:<this API id>/main/DELETE/@connections/<connectionId>; connection ids are unknown in advance, so the last path segment is a wildcard (API, stage and method are fixed).',
    });
  }
}

function pascal(name: string): string {
  return name
    .split('-')
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');
}
