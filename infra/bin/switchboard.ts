#!/usr/bin/env node
// The CDK app: one env-agnostic stack, synthesized fully offline (no lookups, no
// bootstrap-version rule that would need AWS), checked by cdk-nag's AWS Solutions pack.
import * as cdk from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { configFromContext } from '../lib/config';
import { SwitchboardStack } from '../lib/switchboard-stack';

const app = new cdk.App();
const stackName = app.node.tryGetContext('stackName') ?? 'Switchboard';
new SwitchboardStack(app, stackName, {
  description: 'Switchboard: multi-tenant WebSocket notifications (API Gateway, Lambda, DynamoDB, SQS)',
  config: configFromContext(app.node),
  synthesizer: new cdk.DefaultStackSynthesizer({ generateBootstrapVersionRule: false }),
});
cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
