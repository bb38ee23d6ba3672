// The whole AWS deployment of Switchboard (SPEC §8) in one stack:
//
//   clients ──wss──▶ WebSocket API (stage main) ──$connect──▶ authorizer ─▶ connect ─▶ roster (DynamoDB)
//                                              ──$disconnect─▶ disconnect ─▶ roster
//                                              ──$default───▶ default (ping / whoami, replies inline)
//   backends ─https─▶ HTTP API POST /v1/messages ─▶ publish-api ─▶ SQS queue ─▶ publisher ─▶ @connections
//   backends ─SendMessage──────────────────────────────────────▶ SQS queue        │  └─▶ roster (Query/Scan)
//                                                               DLQ (5 receives) ◀┘ (malformed bodies at once)
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
import * as fs from 'fs';
import * as path from 'path';
import { Construct } from 'constructs';
import { FUNCTION_NAMES, FunctionName, SwitchboardConfig } from './config';

/** The WebSocket stage; part of every client URL and of CALLBACK_URL. */
export const STAGE_NAME = 'main';
/** The roster's user index (SPEC §3). */
export const USER_INDEX = 'byUser';

export interface SwitchboardStackProps extends cdk.StackProps {
  readonly config: SwitchboardConfig;
}

/** Per-function settings that differ; everything else is shared. */
const FUNCTION_SETTINGS: Record<FunctionName, { memory: number; timeoutSecs?: number; description: string }> = {
  authorizer: { memory: 256, timeoutSecs: 10, description: 'Switchboard: verifies the JWT on $connect (REQUEST authorizer)' },
  connect: { memory: 256, timeoutSecs: 10, description: 'Switchboard: $connect, writes the roster item' },
  disconnect: { memory: 256, timeoutSecs: 10, description: 'Switchboard: $disconnect, deletes the roster item' },
  default: { memory: 256, timeoutSecs: 10, description: 'Switchboard: $default, answers ping / whoami / unknown_action' },
  publisher: { memory: 512, description: 'Switchboard: SQS-triggered fan-out to the connections' },
  'publish-api': { memory: 256, timeoutSecs: 15, description: 'Switchboard: POST /v1/messages, validates and enqueues' },
};

export class SwitchboardStack extends cdk.Stack {
  readonly table: dynamodb.Table;
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly webSocketApi: apigwv2.WebSocketApi;
  readonly webSocketStage: apigwv2.WebSocketStage;
  readonly httpApi: apigwv2.HttpApi;
  readonly functions: Record<FunctionName, lambda.Function>;

  constructor(scope: Construct, id: string, props: SwitchboardStackProps) {
    super(scope, id, props);
    const config = props.config;

    // ---- Parameters: the identity provider is chosen at deploy time -------------------
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
    // An empty issuer/audience must mean "not checked" (SPEC §2), so the variable is left
    // out rather than set to "".
    const hasIssuer = new cdk.CfnCondition(this, 'HasJwtIssuer', {
      expression: cdk.Fn.conditionNot(cdk.Fn.conditionEquals(issuer.valueAsString, '')),
    });
    const hasAudience = new cdk.CfnCondition(this, 'HasJwtAudience', {
      expression: cdk.Fn.conditionNot(cdk.Fn.conditionEquals(audience.valueAsString, '')),
    });
    const identityEnv: Record<string, string> = {
      JWT_JWKS_URL: jwksUrl.valueAsString,
      JWT_ISSUER: cdk.Fn.conditionIf(hasIssuer.logicalId, issuer.valueAsString, cdk.Aws.NO_VALUE).toString(),
      JWT_AUDIENCE: cdk.Fn.conditionIf(hasAudience.logicalId, audience.valueAsString, cdk.Aws.NO_VALUE).toString(),
      TENANT_CLAIM: tenantClaim.valueAsString,
      ROLES_CLAIM: rolesClaim.valueAsString,
    };

    // ---- Roster table (SPEC §3) --------------------------------------------------------
    this.table = new dynamodb.Table(this, 'Roster', {
      tableName: config.rosterTableName,
      partitionKey: { name: 'PK', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'SK', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'expiresAt',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      // The roster is rebuilt by reconnecting clients, but keep it on stack deletion
      // anyway (CDK's default) so a mistaken `cdk destroy` loses no live state.
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: USER_INDEX,
      partitionKey: { name: 'GSI1PK', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'GSI1SK', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    const tableArn = this.table.tableArn;
    const userIndexArn = `${tableArn}/index/${USER_INDEX}`;

    // ---- Queues (SPEC §5) --------------------------------------------------------------
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: cdk.Duration.days(14),
    });
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

    for (const fn of [fns.authorizer, fns['publish-api']]) {
      for (const [k, v] of Object.entries(identityEnv)) fn.addEnvironment(k, v);
    }
    for (const fn of [fns.connect, fns.disconnect, fns.publisher]) {
      fn.addEnvironment('ROSTER_TABLE', this.table.tableName);
    }
    fns.connect.addEnvironment('CONNECTION_TTL_SECS', String(config.connectionTtlSecs));

    // ---- WebSocket API -------------------------------------------------------------------
    // Identity source: none. API Gateway checks that every identity source is present
    // and non-empty and answers 401 *without calling the authorizer* otherwise. A client
    // may send its token either as `?token=` or as `Sec-WebSocket-Protocol: bearer, <jwt>`
    // (SPEC §2), and any one source would reject the other way. WebSocket REQUEST
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
        // `$default` answers ping/whoami in its return value (a route response), so it
        // needs no execute-api:ManageConnections permission.
        returnResponse: true,
      },
    });
    const cfnAuthorizers = this.node.findAll().filter((c): c is apigwv2.CfnAuthorizer => c instanceof apigwv2.CfnAuthorizer);
    if (cfnAuthorizers.length !== 1) throw new Error(`expected one WebSocket authorizer, found ${cfnAuthorizers.length}`);
    cfnAuthorizers[0].addPropertyDeletionOverride('IdentitySource');

    const wsAccessLogs = new logs.LogGroup(this, 'WebSocketAccessLogs', { retention: logs.RetentionDays.ONE_MONTH });
    this.webSocketStage = new apigwv2.WebSocketStage(this, 'MainStage', {
      webSocketApi: this.webSocketApi,
      stageName: STAGE_NAME,
      autoDeploy: true,
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(wsAccessLogs),
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
      },
    });
    if (config.createApiGatewayLogsRole) {
      this.apiGatewayLogsRole(this.webSocketStage);
    }

    // ---- Publisher -------------------------------------------------------------------------
    const callbackUrl = this.webSocketStage.callbackUrl;
    fns.publisher.addEnvironment('CALLBACK_URL', callbackUrl);
    fns.publisher.addEnvironment('DLQ_URL', this.deadLetterQueue.queueUrl);
    fns.publisher.addEnvironment('FANOUT_CONCURRENCY', String(config.fanoutConcurrency));
    fns.publisher.addEnvironment('SCAN_SEGMENTS', String(config.scanSegments));
    fns.publisher.addEnvironment('LEGACY_BROADCAST', String(config.legacyBroadcast));
    fns.publisher.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: 10,
        reportBatchItemFailures: true,
      }),
    );

    // ---- HTTP publish API (SPEC §6) ---------------------------------------------------------
    fns['publish-api'].addEnvironment('QUEUE_URL', this.queue.queueUrl);
    this.httpApi = new apigwv2.HttpApi(this, 'PublishHttpApi', {
      apiName: `${this.stackName}-publish`,
      description: 'Switchboard publish API (POST /v1/messages)',
      createDefaultStage: false,
    });
    this.httpApi.addRoutes({
      path: '/v1/messages',
      methods: [apigwv2.HttpMethod.POST],
      integration: new HttpLambdaIntegration('PublishIntegration', fns['publish-api']),
    });
    const httpAccessLogs = new logs.LogGroup(this, 'PublishHttpApiAccessLogs', { retention: logs.RetentionDays.ONE_MONTH });
    new apigwv2.HttpStage(this, 'PublishStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
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

    // ---- Least-privilege IAM (SPEC §8) ------------------------------------------------------
    fns.connect.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'RosterPut', actions: ['dynamodb:PutItem'], resources: [tableArn] }),
    );
    fns.disconnect.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'RosterDelete', actions: ['dynamodb:DeleteItem'], resources: [tableArn] }),
    );
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
    fns.publisher.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'DeadLetter',
        actions: ['sqs:SendMessage'],
        resources: [this.deadLetterQueue.queueArn],
      }),
    );
    fns['publish-api'].addToRolePolicy(
      new iam.PolicyStatement({ sid: 'Enqueue', actions: ['sqs:SendMessage'], resources: [this.queue.queueArn] }),
    );
    // authorizer, default: logging only.

    // ---- Alarms ------------------------------------------------------------------------------
    const alarms: cloudwatch.Alarm[] = [];
    alarms.push(
      new cloudwatch.Alarm(this, 'DeadLetterQueueDepth', {
        alarmDescription: 'Switchboard: messages in the dead-letter queue (malformed bodies or 5 failed receives)',
        metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: cdk.Duration.minutes(1),
          statistic: cloudwatch.Stats.MAXIMUM,
        }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );
    for (const name of FUNCTION_NAMES) {
      alarms.push(
        new cloudwatch.Alarm(this, `${pascal(name)}Errors`, {
          alarmDescription: `Switchboard: ${name} function errors`,
          metric: fns[name].metricErrors({ period: cdk.Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    if (config.alarmTopicArn) {
      const topic = sns.Topic.fromTopicArn(this, 'AlarmTopic', config.alarmTopicArn);
      for (const alarm of alarms) alarm.addAlarmAction(new cwActions.SnsAction(topic));
    }

    // ---- Outputs -------------------------------------------------------------------------------
    new cdk.CfnOutput(this, 'WebSocketUrl', {
      description: 'Clients connect here: wss://…/main?token=<jwt> or subprotocols "bearer, <jwt>"',
      value: this.webSocketStage.url,
    });
    new cdk.CfnOutput(this, 'PublishUrl', {
      description: 'POST envelopes here with Authorization: Bearer <jwt>',
      value: `${this.httpApi.apiEndpoint}/v1/messages`,
    });
    new cdk.CfnOutput(this, 'QueueUrl', { description: 'SQS queue for envelopes (QUEUE_URL)', value: this.queue.queueUrl });
    new cdk.CfnOutput(this, 'DeadLetterQueueUrl', { description: 'Dead-letter queue (DLQ_URL)', value: this.deadLetterQueue.queueUrl });
    new cdk.CfnOutput(this, 'CallbackUrl', { description: 'Management API base URL (CALLBACK_URL)', value: callbackUrl });
    new cdk.CfnOutput(this, 'TableName', { description: 'Roster table (ROSTER_TABLE)', value: this.table.tableName });

    this.nagAcknowledgments();
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
    const id = pascal(name);
    const settings = FUNCTION_SETTINGS[name];
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
      timeout: cdk.Duration.seconds(settings.timeoutSecs ?? config.publisherTimeoutSecs),
      role,
      logGroup,
      environment: { RUST_LOG: rustLog },
    });
  }

  /**
   * WebSocket access logging needs API Gateway's account-level CloudWatch Logs role.
   * Opt-in (`-c createApiGatewayLogsRole=true`) since it is one setting per account and region.
   */
  private apiGatewayLogsRole(stage: apigwv2.WebSocketStage): void {
    const role = new iam.Role(this, 'ApiGatewayLogsRole', {
      assumedBy: new iam.ServicePrincipal('apigateway.amazonaws.com'),
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
    });
    const account = new apigw.CfnAccount(this, 'ApiGatewayAccount', { cloudWatchRoleArn: role.roleArn });
    stage.node.addDependency(account);
    Validations.of(role).acknowledge({
      id: 'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason:
        "API Gateway's account-wide logging role must be able to write to any access-log group of any API in the region; the AWS managed policy is the documented one for it.",
    });
  }

  /**
   * Every cdk-nag finding we accept, with its reason, acknowledged on the one resource it
   * is about (cdk-nag v3 uses CDK's own `Validations.of(construct).acknowledge`).
   */
  private nagAcknowledgments(): void {
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
          'POST /v1/messages is authorized by the publish-api function itself (SPEC §6): it verifies the bearer JWT with the same code as the WebSocket authorizer and also enforces role and tenant rules, answering 401/403 as JSON.',
      });
    }
    const apiLogicalId = this.resolve((this.webSocketApi.node.defaultChild as apigwv2.CfnApi).logicalId);
    Validations.of(this.functions.publisher.role!).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiLogicalId}>/${STAGE_NAME}/POST/@connections/*]`,
      reason:
        'Posting to a WebSocket client needs execute-api:ManageConnections on arn:…:<this API id>/main/POST/@connections/<connectionId>; connection ids are unknown in advance, so the last path segment is a wildcard (API, stage and method are fixed).',
    });
  }
}

function pascal(name: string): string {
  return name
    .split('-')
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');
}
