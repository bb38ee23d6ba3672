// Least-privilege IAM (docs/design.md: AWS deployment): each function's own statements,
// exact actions on exact resources, no `grant*` helper and no AWS managed policy.

import * as iam from 'aws-cdk-lib/aws-iam';
import { SwitchboardConfig } from './config';
import { DEVICE_KEY_PATTERN, STAGE_NAME, USAGE_KEY_PATTERN, USER_INDEX } from './names';
import { DEVICE_FUNCTIONS } from './push';
import type { SwitchboardStack } from './switchboard-stack';

/** Every function's statements (the authorizer's role only logs). */
export function grantLeastPrivilege(stack: SwitchboardStack, config: SwitchboardConfig): void {
  const fns = stack.functions;
  const tableArn = stack.table.tableArn;
  const userIndexArn = `${tableArn}/index/${USER_INDEX}`;
  const historyArn = stack.historyTable.tableArn;
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
  const manageConnectionsArn = stack.formatArn({
    service: 'execute-api',
    resource: stack.webSocketApi.apiId,
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
  const deleteConnectionsArn = stack.formatArn({
    service: 'execute-api',
    resource: stack.webSocketApi.apiId,
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
    new iam.PolicyStatement({ sid: 'ContinueFanout', actions: ['sqs:SendMessage'], resources: [stack.queue.queueArn] }),
  );
  fns.publisher.addToRolePolicy(
    new iam.PolicyStatement({
      sid: 'DeadLetter',
      actions: ['sqs:SendMessage'],
      resources: [stack.deadLetterQueue.queueArn],
    }),
  );
  fns.publisher.addToRolePolicy(
    new iam.PolicyStatement({ sid: 'HistoryWrite', actions: ['dynamodb:BatchWriteItem'], resources: [historyArn] }),
  );
  // Receipts: one UpdateItem (ADD) per page, creating the receipt of a body sent straight to SQS. Usage
  // (docs/design.md: Usage) uses it too: one UpdateItem (ADD) per tenant per unit of work (matched, delivered, gone,
  // bytesSent).
  fns.publisher.addToRolePolicy(
    new iam.PolicyStatement({ sid: 'ReceiptUpdate', actions: ['dynamodb:UpdateItem'], resources: [historyArn] }),
  );
  // The work log (docs/design.md: Fan-out at any size): a conditional PutItem claims a unit (GetItem reads the
  // claim it lost to), PutItem marks it done, a conditional DeleteItem gives a claim back.
  fns.publisher.addToRolePolicy(
    new iam.PolicyStatement({
      sid: 'WorkLog',
      actions: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem'],
      resources: [historyArn],
    }),
  );
  fns['publish-api'].addToRolePolicy(
    new iam.PolicyStatement({ sid: 'Enqueue', actions: ['sqs:SendMessage'], resources: [stack.queue.queueArn] }),
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
  // Web Push (docs/design.md: Web Push), only while push is on, on device items only (`D#<tenant>` keys): default
  // (`push_subscribe`/`push_unsubscribe`) and publish-api (`/v1/push/subscriptions`) register and remove devices
  // (Query the user's devices, PutItem the new one, DeleteItem the oldest past PUSH_MAX_DEVICES_PER_USER or the one
  // removed); the publisher reads them (Query: a user's devices, a tenant's pages) and deletes the ones the push
  // service says are gone (404/410).
  if (config.push) {
    const onDeviceKeys = { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [DEVICE_KEY_PATTERN] } };
    for (const name of DEVICE_FUNCTIONS) {
      fns[name].addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'Devices',
          actions: ['dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
          resources: [historyArn],
          conditions: onDeviceKeys,
        }),
      );
    }
    fns.publisher.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'Devices',
        actions: ['dynamodb:Query', 'dynamodb:DeleteItem'],
        resources: [historyArn],
        conditions: onDeviceKeys,
      }),
    );
  }
  // authorizer: logging only.
}
