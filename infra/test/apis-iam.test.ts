// The two APIs and least-privilege IAM of the default stack.
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as fs from 'fs';
import * as path from 'path';
import { FUNCTION_NAMES } from '../lib/config';
import { USAGE_KEY_PATTERN } from '../lib/switchboard-stack';
import { build, Built } from './helpers';
import { dlqId, fnId, historyId, logicalId, logStatement, queueId, Resources, statementsOf, tableId, underTest, wsApiId, xrayStatement } from './stack-fixture';

let built: Built;
let template: Template;
let resources: Resources;

beforeAll(() => ({ built, template, resources } = underTest()));

describe('WebSocket API', () => {
  const route = (key: string) => {
    const found = Object.values(resources).filter((r) => r.Type === 'AWS::ApiGatewayV2::Route' && r.Properties.RouteKey === key);
    expect(found).toHaveLength(1);
    return found[0].Properties;
  };
  const integrationFunction = (routeProps: any) => {
    const integrationId = routeProps.Target['Fn::Join'][1][1].Ref;
    const uri = resources[integrationId].Properties.IntegrationUri;
    return uri['Fn::Join'][1].find((p: any) => p['Fn::GetAtt'])['Fn::GetAtt'][0];
  };
  const authorizerId = () => Object.entries(resources).find(([, r]) => r.Type === 'AWS::ApiGatewayV2::Authorizer')![0];

  test('a WEBSOCKET API selecting routes on the body action', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'WEBSOCKET',
      RouteSelectionExpression: '$request.body.action',
    });
  });

  test('$connect → connect, with the Lambda REQUEST authorizer (CUSTOM)', () => {
    const r = route('$connect');
    expect(r.AuthorizationType).toBe('CUSTOM');
    expect(r.AuthorizerId).toEqual({ Ref: authorizerId() });
    expect(integrationFunction(r)).toBe(fnId('connect'));
  });

  test('$disconnect → disconnect and $default → default, without authorizer', () => {
    expect(route('$disconnect').AuthorizationType).toBe('NONE');
    expect(integrationFunction(route('$disconnect'))).toBe(fnId('disconnect'));
    expect(route('$default').AuthorizationType).toBe('NONE');
    expect(integrationFunction(route('$default'))).toBe(fnId('default'));
  });

  test('$default replies through a route response (resume posts its frames first, see IAM)', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::RouteResponse', { RouteResponseKey: '$default' });
  });

  test('the authorizer is the authorizer function, with no identity source (token in query or subprotocol)', () => {
    const a = resources[authorizerId()].Properties;
    expect(a.AuthorizerType).toBe('REQUEST');
    expect(a.IdentitySource).toBeUndefined();
    expect(JSON.stringify(a.AuthorizerUri)).toContain(`"${fnId('authorizer')}","Arn"`);
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [fnId('authorizer'), 'Arn'] },
      Principal: 'apigateway.amazonaws.com',
    });
  });

  test('stage main, auto-deployed, throttled at the stage; no access logs by default (fresh accounts)', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      ApiId: { Ref: wsApiId() },
      StageName: 'main',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 2000 },
      AccessLogSettings: Match.absent(),
    });
    template.resourceCountIs('AWS::ApiGateway::Account', 0);
  });

  test('throttling values come from context', () => {
    const t = Template.fromStack(build({ webSocketRateLimit: '300', webSocketBurstLimit: '600', publishRateLimit: '50', publishBurstLimit: '80' }).stack);
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: 'main',
      DefaultRouteSettings: { ThrottlingRateLimit: 300, ThrottlingBurstLimit: 600 },
    });
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 80 },
    });
    expect(() => build({ webSocketRateLimit: '300', webSocketBurstLimit: '100' })).toThrow(/webSocketBurstLimit/);
  });

  test('-c webSocketAccessLogs=true: JSON access logs (the account must have the logging role)', () => {
    const t = Template.fromStack(build({ webSocketAccessLogs: 'true' }).stack);
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: 'main',
      AccessLogSettings: {
        DestinationArn: { 'Fn::GetAtt': [Match.anyValue(), 'Arn'] },
        Format: Match.stringLikeRegexp('"connectionId":"\\$context.connectionId"'),
      },
    });
    t.resourceCountIs('AWS::ApiGateway::Account', 0);
  });

  test('the one-time logging-role step: role and account setting retained, the stage waits for them', () => {
    const t = Template.fromStack(build({ createApiGatewayLogsRole: 'true', webSocketAccessLogs: 'true' }).stack);
    t.hasResource('AWS::ApiGateway::Account', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: { CloudWatchRoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ApiGatewayLogsRole'), 'Arn'] } },
    });
    t.hasResource('AWS::IAM::Role', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'apigateway.amazonaws.com' } })] },
        ManagedPolicyArns: [Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([':iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs'])] })],
      },
    });
    t.hasResource('AWS::ApiGatewayV2::Stage', {
      Properties: { StageName: 'main' },
      DependsOn: Match.arrayWith([Match.stringLikeRegexp('^ApiGatewayAccount')]),
    });
  });
});

describe('HTTP publish API (docs/design.md: Publish API; Presence)', () => {
  const httpApiId = () => logicalId(built.stack.httpApi);

  test('POST /v1/messages, GET /v1/messages/{id}, the three presence GETs, GET /v1/tenants, the usage GET and the Web Push routes → publish-api (one integration), and no other route', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    const routes = Object.values(resources).filter((r) => r.Type === 'AWS::ApiGatewayV2::Route' && r.Properties.ApiId.Ref === httpApiId());
    expect(routes.map((r) => r.Properties.RouteKey).sort()).toEqual(
      [
        'GET /v1/messages/{id}',
        'GET /v1/tenants',
        'GET /v1/tenants/{tenant}/presence',
        'GET /v1/tenants/{tenant}/presence/summary',
        'GET /v1/tenants/{tenant}/users/{user}/presence',
        'GET /v1/tenants/{tenant}/usage',
        'POST /v1/messages',
        'POST /v1/push/subscriptions',
        'DELETE /v1/push/subscriptions/{id}',
        'GET /v1/push/vapid-public-key',
      ].sort(),
    );
    const integrations = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::ApiGatewayV2::Integration' && r.Properties.ApiId.Ref === httpApiId());
    expect(integrations).toHaveLength(1);
    const [integrationId, integration] = integrations[0];
    expect(integration.Properties).toMatchObject({
      IntegrationType: 'AWS_PROXY',
      IntegrationUri: { 'Fn::GetAtt': [fnId('publish-api'), 'Arn'] },
      PayloadFormatVersion: '2.0',
    });
    for (const r of routes) {
      expect(r.Properties.AuthorizationType).toBe('NONE'); // publish-api verifies the JWT itself
      expect(r.Properties.Target).toEqual({ 'Fn::Join': ['', ['integrations/', { Ref: integrationId }]] });
    }
  });

  test('outputs: PublishUrl and PresenceUrl on the API endpoint', () => {
    const outputs = template.toJSON().Outputs;
    const endpoint = (tail: string) => ({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [httpApiId(), 'ApiEndpoint'] }, tail]] });
    expect(outputs.PublishUrl.Value).toEqual(endpoint('/v1/messages'));
    expect(outputs.PresenceUrl.Value).toEqual(endpoint('/v1/tenants'));
  });

  test('output: ConsoleCommand runs switchboard console against this HTTP API and WebSocket stage', () => {
    const value = template.toJSON().Outputs.ConsoleCommand.Value;
    const [, parts] = value['Fn::Join'];
    expect(parts[0]).toBe('switchboard console --api ');
    expect(parts[1]).toEqual({ 'Fn::GetAtt': [httpApiId(), 'ApiEndpoint'] });
    expect(parts[2]).toBe(' --websocket wss://');
    expect(JSON.stringify(parts.slice(3))).toContain('execute-api');
  });

  test('on the $default stage with access logs and throttling', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('\\$context.requestId') },
      DefaultRouteSettings: { ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 },
    });
  });
});

describe('least-privilege IAM (docs/design.md: AWS deployment)', () => {
  const tableArn = () => ({ 'Fn::GetAtt': [tableId(), 'Arn'] });
  /** ManageConnections on this WebSocket API's stage main, POST (or `method`) only. */
  const manageConnectionsArn = (method = 'POST') => ({
    'Fn::Join': [
      '',
      [
        'arn:',
        { Ref: 'AWS::Partition' },
        ':execute-api:',
        { Ref: 'AWS::Region' },
        ':',
        { Ref: 'AWS::AccountId' },
        ':',
        { Ref: wsApiId() },
        `/main/${method}/@connections/*`,
      ],
    ],
  });

  const historyArn = () => ({ 'Fn::GetAtt': [historyId(), 'Arn'] });
  /** Only the usage items of the history table (docs/design.md: Usage): partition keys `U#<tenant|*>`. */
  const onUsageKeys = { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['U#*'] } };
  /** usage.rs: `add` (UpdateItem ADD, and a conditional UpdateItem SET for a peak), `add_live` (UpdateItem ADD). */
  const usageCount = () => ({ Sid: 'UsageCount', Effect: 'Allow', Action: ['dynamodb:UpdateItem'], Resource: historyArn(), Condition: onUsageKeys });

  test('connect: PutItem on the table; UpdateItem on usage keys of the history table (live counter, peak)', () => {
    expect(statementsOf('connect')).toEqual([
      logStatement('connect'),
      xrayStatement,
      { Sid: 'RosterPut', Effect: 'Allow', Action: ['dynamodb:PutItem'], Resource: tableArn() },
      usageCount(),
    ]);
  });

  test('disconnect: DeleteItem on the table; UpdateItem on usage keys of the history table (live counter, minutes)', () => {
    expect(statementsOf('disconnect')).toEqual([
      logStatement('disconnect'),
      xrayStatement,
      { Sid: 'RosterDelete', Effect: 'Allow', Action: ['dynamodb:DeleteItem'], Resource: tableArn() },
      usageCount(),
    ]);
  });

  test('publisher: consume the queue, read/clean the roster, post to this API stage only, continue, dead-letter, put message.settled on the bus', () => {
    expect(statementsOf('publisher')).toEqual([
      logStatement('publisher'),
      xrayStatement,
      {
        Effect: 'Allow',
        Action: [
          'sqs:ReceiveMessage',
          'sqs:ChangeMessageVisibility',
          'sqs:GetQueueUrl',
          'sqs:DeleteMessage',
          'sqs:GetQueueAttributes',
        ],
        Resource: { 'Fn::GetAtt': [queueId(), 'Arn'] },
      },
      {
        Sid: 'RosterRead',
        Effect: 'Allow',
        Action: ['dynamodb:Query', 'dynamodb:Scan', 'dynamodb:BatchGetItem', 'dynamodb:DeleteItem'],
        Resource: tableArn(),
      },
      {
        Sid: 'RosterQueryByUser',
        Effect: 'Allow',
        Action: ['dynamodb:Query'],
        Resource: { 'Fn::Join': ['', [tableArn(), '/index/byUser']] },
      },
      { Sid: 'PostToConnections', Effect: 'Allow', Action: ['execute-api:ManageConnections'], Resource: manageConnectionsArn() },
      {
        Sid: 'CloseExpiredConnections',
        Effect: 'Allow',
        Action: ['execute-api:ManageConnections'],
        Resource: manageConnectionsArn('DELETE'),
      },
      { Sid: 'ContinueFanout', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: { 'Fn::GetAtt': [queueId(), 'Arn'] } },
      { Sid: 'DeadLetter', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: { 'Fn::GetAtt': [dlqId(), 'Arn'] } },
      { Sid: 'HistoryWrite', Effect: 'Allow', Action: ['dynamodb:BatchWriteItem'], Resource: { 'Fn::GetAtt': [historyId(), 'Arn'] } },
      { Sid: 'ReceiptUpdate', Effect: 'Allow', Action: ['dynamodb:UpdateItem'], Resource: { 'Fn::GetAtt': [historyId(), 'Arn'] } },
      {
        Sid: 'WorkLog',
        Effect: 'Allow',
        Action: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem'],
        Resource: { 'Fn::GetAtt': [historyId(), 'Arn'] },
      },
      // message.settled (docs/design.md: Events), on the stack's bus only.
      { Sid: 'PutEvents', Effect: 'Allow', Action: ['events:PutEvents'], Resource: { 'Fn::GetAtt': [logicalId(built.stack.events.bus), 'Arn'] } },
    ]);
  });

  test('publish-api: SendMessage on the queue; receipts in the history table; presence is Query on the roster and byUser (no Scan, no GetItem); usage is UpdateItem and Query on usage keys', () => {
    expect(statementsOf('publish-api')).toEqual([
      logStatement('publish-api'),
      xrayStatement,
      { Sid: 'Enqueue', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: { 'Fn::GetAtt': [queueId(), 'Arn'] } },
      {
        Sid: 'Receipts',
        Effect: 'Allow',
        Action: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem'],
        Resource: { 'Fn::GetAtt': [historyId(), 'Arn'] },
      },
      { Sid: 'PresenceQuery', Effect: 'Allow', Action: ['dynamodb:Query'], Resource: tableArn() },
      {
        Sid: 'PresenceQueryByUser',
        Effect: 'Allow',
        Action: ['dynamodb:Query'],
        Resource: { 'Fn::Join': ['', [tableArn(), '/index/byUser']] },
      },
      usageCount(),
      { Sid: 'UsageRead', Effect: 'Allow', Action: ['dynamodb:Query'], Resource: historyArn(), Condition: onUsageKeys },
    ]);
  });

  test('default: Query on the history table, post to this API stage only (resume); UpdateItem on the roster (refresh)', () => {
    expect(statementsOf('default')).toEqual([
      logStatement('default'),
      xrayStatement,
      { Sid: 'HistoryRead', Effect: 'Allow', Action: ['dynamodb:Query'], Resource: { 'Fn::GetAtt': [historyId(), 'Arn'] } },
      { Sid: 'RosterTokenExpiry', Effect: 'Allow', Action: ['dynamodb:UpdateItem'], Resource: tableArn() },
      { Sid: 'PostToCaller', Effect: 'Allow', Action: ['execute-api:ManageConnections'], Resource: manageConnectionsArn() },
    ]);
  });

  test('only the publisher writes history (BatchWriteItem) and only default reads it (Query); receipts: the publisher updates, publish-api puts, gets and deletes; the work log: the publisher puts, gets and deletes; usage: the publisher updates (with receipts), publish-api, connect and disconnect update and publish-api queries, on usage keys only', () => {
    const onHistory = FUNCTION_NAMES.flatMap((n) =>
      statementsOf(n)
        .filter((st) => JSON.stringify(st.Resource).includes(`"${historyId()}"`))
        .map((st) => `${n} ${st.Action.join(',')}${st.Condition ? ` if ${JSON.stringify(st.Condition)}` : ''}`),
    );
    const usageOnly = ` if ${JSON.stringify(onUsageKeys)}`;
    expect(onHistory.sort()).toEqual(
      [
        'default dynamodb:Query',
        'publish-api dynamodb:PutItem,dynamodb:GetItem,dynamodb:DeleteItem',
        `publish-api dynamodb:UpdateItem${usageOnly}`,
        `publish-api dynamodb:Query${usageOnly}`,
        `connect dynamodb:UpdateItem${usageOnly}`,
        `disconnect dynamodb:UpdateItem${usageOnly}`,
        'publisher dynamodb:BatchWriteItem',
        'publisher dynamodb:PutItem,dynamodb:GetItem,dynamodb:DeleteItem',
        'publisher dynamodb:UpdateItem',
        `events dynamodb:UpdateItem,dynamodb:GetItem if ${JSON.stringify({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['O#*'] } })}`,
      ].sort(),
    );
  });

  test('the usage key pattern is the Rust side\'s (services/aws/src/dynamo/usage.rs, services/core/src/usage/)', () => {
    // Every usage item's PK is the prefix + tenant or `*` (`storage_key`), and no other key starts with it.
    const rust = fs.readFileSync(path.join(__dirname, '..', '..', 'services', 'core', 'src', 'usage', 'mod.rs'), 'utf8');
    const prefix = /fn storage_key\([^)]*\) -> String \{\s*format!\("([^"{]+)\{\}", group\(tenant\)\)/.exec(rust)?.[1];
    expect(prefix).toBe('U#');
    expect(USAGE_KEY_PATTERN).toBe(`${prefix}*`);
  });

  test('authorizer: its own log group only', () => {
    expect(statementsOf('authorizer')).toEqual([logStatement('authorizer'), xrayStatement]);
  });

  test('API Gateway may invoke each function only from its own API and route', () => {
    const permissions = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Permission');
    const byFunction = permissions.map((p) => {
      expect(p.Properties.Principal).toBe('apigateway.amazonaws.com');
      expect(p.Properties.Action).toBe('lambda:InvokeFunction');
      const parts = p.Properties.SourceArn['Fn::Join'][1];
      const api = parts.find((x: any) => x.Ref && !x.Ref.startsWith('AWS::')).Ref;
      const tail = parts.slice(parts.findIndex((x: any) => x.Ref === api) + 1).map((x: any) => (typeof x === 'string' ? x : `<${x.Ref}>`)).join('');
      return `${p.Properties.FunctionName['Fn::GetAtt'][0]} ${api} ${tail.replace(/<WebSocketApiJwtAuthorizer[0-9A-F]+>/, '<authorizer>')}`;
    });
    expect(byFunction.sort()).toEqual(
      [
        `${fnId('authorizer')} ${wsApiId()} /authorizers/<authorizer>`,
        `${fnId('connect')} ${wsApiId()} /*$connect`,
        `${fnId('disconnect')} ${wsApiId()} /*$disconnect`,
        `${fnId('default')} ${wsApiId()} /*$default`,
        `${fnId('publish-api')} ${logicalId(built.stack.httpApi)} /*/*/v1/messages`,
        `${fnId('publish-api')} ${logicalId(built.stack.httpApi)} /*/*/v1/messages/{id}`,
        `${fnId('publish-api')} ${logicalId(built.stack.httpApi)} /*/*/v1/tenants`,
        `${fnId('publish-api')} ${logicalId(built.stack.httpApi)} /*/*/v1/tenants/{tenant}/presence`,
        `${fnId('publish-api')} ${logicalId(built.stack.httpApi)} /*/*/v1/tenants/{tenant}/presence/summary`,
        `${fnId('publish-api')} ${logicalId(built.stack.httpApi)} /*/*/v1/tenants/{tenant}/users/{user}/presence`,
        `${fnId('publish-api')} ${logicalId(built.stack.httpApi)} /*/*/v1/tenants/{tenant}/usage`,
        `${fnId('publish-api')} ${logicalId(built.stack.httpApi)} /*/*/v1/push/subscriptions`,
        `${fnId('publish-api')} ${logicalId(built.stack.httpApi)} /*/*/v1/push/subscriptions/{id}`,
        `${fnId('publish-api')} ${logicalId(built.stack.httpApi)} /*/*/v1/push/vapid-public-key`,
      ].sort(),
    );
  });

  test('no wildcard action or resource anywhere, except the @connections/<id> segment and X-Ray (no resource-level permissions)', () => {
    const literals: string[] = [];
    const collect = (v: unknown): void => {
      if (typeof v === 'string') literals.push(v);
      else if (Array.isArray(v)) v.forEach(collect);
      else if (v && typeof v === 'object') Object.values(v).forEach(collect);
    };
    for (const r of Object.values(resources)) {
      if (r.Type !== 'AWS::IAM::Policy' && r.Type !== 'AWS::IAM::Role') continue;
      const docs = r.Type === 'AWS::IAM::Policy' ? [r.Properties.PolicyDocument] : (r.Properties.Policies ?? []).map((p: any) => p.PolicyDocument);
      for (const doc of docs) {
        for (const s of doc.Statement) {
          expect(s.Effect).toBe('Allow');
          expect(s.NotAction).toBeUndefined();
          expect(s.NotResource).toBeUndefined();
          collect(s.Action);
          collect(s.Resource);
        }
      }
      expect(r.Properties.ManagedPolicyArns).toBeUndefined();
    }
    const withStar = literals.filter((l) => l.includes('*'));
    // publisher (fan-out) and default (resume) post to connections; the publisher also
    // closes those whose token expired.
    expect(withStar.filter((l) => l !== '*').sort()).toEqual([
      '/main/DELETE/@connections/*',
      '/main/POST/@connections/*',
      '/main/POST/@connections/*',
    ]);
    expect(withStar.filter((l) => l === '*')).toHaveLength(FUNCTION_NAMES.length); // the X-Ray statement of each function
    for (const r of Object.values(resources)) {
      if (r.Type !== 'AWS::IAM::Policy') continue;
      for (const st of r.Properties.PolicyDocument.Statement) {
        if (st.Resource === '*') expect(st.Action).toEqual(['xray:PutTraceSegments', 'xray:PutTelemetryRecords']);
      }
    }
  });
});
