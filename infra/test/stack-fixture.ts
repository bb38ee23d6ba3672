// The default stack under test, built once per test file, and the helpers that read its
// template: logical ids, a function's IAM statements, the statements every role carries.

import * as cdk from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { FunctionName } from '../lib/config';
import { build, Built } from './helpers';

export type Resources = Record<string, { Type: string; Properties?: any; DependsOn?: any }>;

export interface UnderTest {
  readonly built: Built;
  readonly template: Template;
  readonly resources: Resources;
}

let cached: UnderTest | undefined;

/** The stack with the default context (built on first use; call it in `beforeAll`). */
export function underTest(): UnderTest {
  if (!cached) {
    const built = build();
    const template = Template.fromStack(built.stack);
    cached = { built, template, resources: template.toJSON().Resources };
  }
  return cached;
}

export const logicalId = (construct: { node: { defaultChild?: unknown } } | cdk.CfnElement): string => {
  const el = (construct instanceof cdk.CfnElement ? construct : construct.node.defaultChild) as cdk.CfnElement;
  return underTest().built.stack.resolve(el.logicalId);
};
export const fnId = (name: FunctionName) => logicalId(underTest().built.stack.functions[name]);
export const pascalName = (name: string) =>
  name
    .split('-')
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');
export const tableId = () => logicalId(underTest().built.stack.table);
export const historyId = () => logicalId(underTest().built.stack.historyTable);
export const queueId = () => logicalId(underTest().built.stack.queue);
export const dlqId = () => logicalId(underTest().built.stack.deadLetterQueue);
export const wsApiId = () => logicalId(underTest().built.stack.webSocketApi);

/** The statements of the inline policies attached to a function's role, Action always an array. */
export function statementsOf(name: FunctionName): any[] {
  const fn = underTest().resources[fnId(name)];
  const roleId = fn.Properties.Role['Fn::GetAtt'][0];
  const out: any[] = [];
  for (const r of Object.values(underTest().resources)) {
    if (r.Type !== 'AWS::IAM::Policy') continue;
    if (!r.Properties.Roles.some((ref: any) => ref.Ref === roleId)) continue;
    for (const s of r.Properties.PolicyDocument.Statement) {
      out.push({ ...s, Action: [s.Action].flat() });
    }
  }
  return out;
}

export const xrayStatement = {
  Effect: 'Allow',
  Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
  Resource: '*',
};

export const logStatement = (name: FunctionName) => {
  const logGroupId = underTest().resources[fnId(name)].Properties.LoggingConfig.LogGroup.Ref;
  return {
    Effect: 'Allow',
    Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    Resource: { 'Fn::GetAtt': [logGroupId, 'Arn'] },
  };
};
