// The cdk-nag findings the stack accepts, each with its reason, on the one resource it is
// about.

import { Validations } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { FUNCTION_NAMES, SwitchboardConfig } from './config';
import { PING_ROUTE_KEY } from './keepalive';
import { STAGE_NAME } from './names';
import type { SwitchboardStack } from './switchboard-stack';

/**
 * Every cdk-nag finding we accept, with its reason, acknowledged on the one resource it
 * is about (cdk-nag v3 uses CDK's own `Validations.of(construct).acknowledge`).
 */
export function nagAcknowledgments(stack: SwitchboardStack, config: SwitchboardConfig): void {
  if (config.tracing !== 'off') {
    for (const name of FUNCTION_NAMES) {
      Validations.of(stack.functions[name].role!).acknowledge({
        id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
        reason:
          'X-Ray tracing (active or passthrough): xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions, so Resource must be * (the statement CDK adds with Tracing.ACTIVE and PASS_THROUGH; opt out with -c tracing=off).',
      });
    }
  }
  if (!config.webSocketAccessLogs) {
    Validations.of(stack.webSocketStage).acknowledge({
      id: 'AwsSolutions::AwsSolutions-APIG1',
      reason:
        "WebSocket access logs need the account-wide API Gateway CloudWatch Logs role, which a fresh account lacks; they are off by default so the first deploy succeeds, and on with -c webSocketAccessLogs=true after the one-time step in infra/README.md. Lambda logs every connect, disconnect and message meanwhile.",
    });
  }
  Validations.of(stack.historyTable).acknowledge({
    id: 'AwsSolutions::AwsSolutions-DDB3',
    reason:
      'The history table is a reconnect buffer (docs/design.md: History and resume): every item expires after HISTORY_TTL_SECS (default 5 minutes) and was already delivered, and the delivery receipts beside it (docs/design.md: Receipts) are reports that expire after RECEIPT_TTL_SECS (default a day); a point-in-time restore could only bring back expired or stale items, so continuous backups would cost money for nothing. The usage buckets beside them (docs/design.md: Usage, kept USAGE_RETENTION_DAYS) are best-effort counts that may undercount by design; whoever bills from them reads them out through GET …/usage. The Web Push devices (D#<tenant>, with push on) expire PUSH_DEVICE_TTL_DAYS after their last registration and an app registers them again whenever it calls client.push.subscribe (which renews the same device), so a restore would bring back stale endpoints at best.',
  });
  const routes = stack.webSocketApi.node.findAll().filter((c): c is apigwv2.CfnRoute => c instanceof apigwv2.CfnRoute);
  for (const route of routes) {
    const key = stack.resolve(route.routeKey);
    if (key === '$disconnect' || key === '$default' || key === PING_ROUTE_KEY) {
      Validations.of(route).acknowledge({
        id: 'AwsSolutions::AwsSolutions-APIG4',
        reason:
          'WebSocket APIs authorize only on $connect (API Gateway allows an authorizer on no other route); $disconnect, $default and ping run on connections that $connect already authorized, with the identity the authorizer returned (ping is answered by API Gateway itself, lib/keepalive.ts).',
      });
    }
  }
  const httpRoutes = stack.httpApi.node.findAll().filter((c): c is apigwv2.CfnRoute => c instanceof apigwv2.CfnRoute);
  for (const route of httpRoutes) {
    Validations.of(route).acknowledge({
      id: 'AwsSolutions::AwsSolutions-APIG4',
      reason:
        'The publish API (POST /v1/messages, GET /v1/messages/{id}, GET …/presence and …/presence/summary, GET /v1/tenants, GET …/usage, POST and DELETE /v1/push/subscriptions) is authorized by the publish-api function itself (docs/design.md: Publish API; Presence; Usage; Web Push): it verifies the bearer JWT with the same code as the WebSocket authorizer and also enforces role and tenant rules (a device is registered for the token\'s own user only), answering 401/403 as JSON. GET /v1/push/vapid-public-key is public by design: it serves the VAPID public key browsers need before they subscribe.',
    });
  }
  const apiLogicalId = stack.resolve((stack.webSocketApi.node.defaultChild as apigwv2.CfnApi).logicalId);
  for (const name of ['publisher', 'default'] as const) {
    Validations.of(stack.functions[name].role!).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiLogicalId}>/${STAGE_NAME}/POST/@connections/*]`,
      reason:
        'Posting to a WebSocket client needs execute-api:ManageConnections on arn:…:<this API id>/main/POST/@connections/<connectionId>; connection ids are unknown in advance, so the last path segment is a wildcard (API, stage and method are fixed).',
    });
  }
  Validations.of(stack.functions.publisher.role!).acknowledge({
    id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiLogicalId}>/${STAGE_NAME}/DELETE/@connections/*]`,
    reason:
      'Closing a connection whose token expired needs execute-api:ManageConnections on arn:…:<this API id>/main/DELETE/@connections/<connectionId>; connection ids are unknown in advance, so the last path segment is a wildcard (API, stage and method are fixed).',
  });
}
