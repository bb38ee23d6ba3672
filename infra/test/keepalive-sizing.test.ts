// Keep-alive without Lambda (lib/keepalive.ts), the WebSocket stage throttle sized from the
// expected connections (lib/sizing.ts) with the quotas it must fit, and the tracing switch.
import { Template } from 'aws-cdk-lib/assertions';
import * as fs from 'fs';
import * as path from 'path';
import { PING_REQUEST_TEMPLATE, PONG_FRAME } from '../lib/keepalive';
import { DEFAULT_WEBSOCKET_RATE_LIMIT, REQUESTS_PER_CONNECTION_PER_SECOND, sizingFor } from '../lib/sizing';
import { build } from './helpers';
import { Resources, underTest, wsApiId } from './stack-fixture';

let resources: Resources;
beforeAll(() => ({ resources } = underTest()));

const ofType = (res: Resources, type: string) => Object.entries(res).filter(([, r]) => r.Type === type);

describe('ping route: answered by API Gateway, no Lambda', () => {
  const pingRoute = () => {
    const found = ofType(resources, 'AWS::ApiGatewayV2::Route').filter(([, r]) => r.Properties.RouteKey === 'ping');
    expect(found).toHaveLength(1);
    return found[0];
  };
  const pingIntegrationId = () => pingRoute()[1].Properties.Target['Fn::Join'][1][1].Ref as string;

  test('the ping route exists on the WebSocket API, with no authorizer and a $default route response', () => {
    const [routeId, route] = pingRoute();
    expect(route.Properties.ApiId).toEqual({ Ref: wsApiId() });
    expect(route.Properties.AuthorizationType).toBe('NONE');
    expect(route.Properties.RouteResponseSelectionExpression).toBe('$default');
    const responses = ofType(resources, 'AWS::ApiGatewayV2::RouteResponse').filter(([, r]) => r.Properties.RouteId.Ref === routeId);
    expect(responses.map(([, r]) => r.Properties.RouteResponseKey)).toEqual(['$default']);
  });

  test('its integration is MOCK, request template {"statusCode":200} selected by \\$default', () => {
    const integration = resources[pingIntegrationId()];
    expect(integration.Type).toBe('AWS::ApiGatewayV2::Integration');
    expect(integration.Properties).toEqual({
      ApiId: { Ref: wsApiId() },
      IntegrationType: 'MOCK',
      IntegrationUri: '',
      RequestTemplates: { $default: '{"statusCode":200}' },
      TemplateSelectionExpression: '\\$default',
    });
  });

  test('its integration response $default answers {"type":"pong"}', () => {
    const responses = ofType(resources, 'AWS::ApiGatewayV2::IntegrationResponse');
    expect(responses).toHaveLength(1);
    expect(responses[0][1].Properties).toEqual({
      ApiId: { Ref: wsApiId() },
      IntegrationId: { Ref: pingIntegrationId() },
      IntegrationResponseKey: '$default',
      TemplateSelectionExpression: '\\$default',
      ResponseTemplates: { $default: '{"type":"pong"}' },
    });
  });

  test('no Lambda permission or integration refers to the ping route or its integration', () => {
    const [routeId] = pingRoute();
    for (const [, r] of ofType(resources, 'AWS::Lambda::Permission')) {
      const text = JSON.stringify(r.Properties);
      expect(text).not.toContain('/ping');
      expect(text).not.toContain(routeId);
    }
    expect(JSON.stringify(resources[pingIntegrationId()])).not.toContain('lambda');
    // Every other WebSocket integration is a Lambda proxy; the ping one is the only MOCK.
    const mocks = ofType(resources, 'AWS::ApiGatewayV2::Integration').filter(([, r]) => r.Properties.IntegrationType === 'MOCK');
    expect(mocks.map(([id]) => id)).toEqual([pingIntegrationId()]);
  });

  test('the pong is byte for byte what serve and the default function send (ServerReply::Pong)', () => {
    expect(PONG_FRAME).toBe('{"type":"pong"}');
    expect(PING_REQUEST_TEMPLATE).toBe('{"statusCode":200}');
    // The Rust side pins the same bytes: serde_json's compact output of ServerReply::Pong.
    const frame = fs.readFileSync(path.resolve(__dirname, '..', '..', 'model', 'src', 'frame.rs'), 'utf8');
    expect(frame).toMatch(/#\[serde\(tag = "type", rename_all = "lowercase"\)\]\s*pub enum ServerReply \{\s*Pong,/);
  });
});

describe('stage throttle sized from expectedConnections', () => {
  const stageThrottle = (context: Record<string, string>) => {
    const t = Template.fromStack(build(context).stack).toJSON().Resources as Resources;
    const stage = Object.values(t).find((r) => r.Type === 'AWS::ApiGatewayV2::Stage' && r.Properties.StageName === 'main')!;
    return stage.Properties.DefaultRouteSettings;
  };

  test('the formula: 1/540 pings + 2/7200 reconnects + 1/3600 actions per connection and second, ×1.5', () => {
    expect(REQUESTS_PER_CONNECTION_PER_SECOND).toBeCloseTo(1 / 540 + 2 / 7200 + 1 / 3600, 12);
    expect(sizingFor(10_000)).toEqual({ expectedConnections: 10_000, needPerSecond: 25, derivedRateLimit: 1000, connectsPerSecond: 5 });
    expect(sizingFor(100_000)).toEqual({ expectedConnections: 100_000, needPerSecond: 241, derivedRateLimit: 1000, connectsPerSecond: 42 });
    expect(sizingFor(1_000_000)).toEqual({ expectedConnections: 1_000_000, needPerSecond: 2408, derivedRateLimit: 3612, connectsPerSecond: 417 });
    // Never below the former fixed rate: a small deployment keeps room for reconnect storms.
    expect(sizingFor(1).derivedRateLimit).toBe(DEFAULT_WEBSOCKET_RATE_LIMIT);
  });

  test('10k (the default): synth passes, 1,000/s burst 2,000', () => {
    expect(stageThrottle({})).toEqual({ ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 2000 });
    expect(stageThrottle({ expectedConnections: '10000' })).toEqual({ ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 2000 });
  });

  test('100k: synth passes, 1,000/s burst 2,000 (need 241/s)', () => {
    expect(stageThrottle({ expectedConnections: '100000' })).toEqual({ ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 2000 });
  });

  test('1M: synth passes, 3,612/s burst 7,224 (3,612 + 5,000 + 500 = 9,112 ≤ 10,000)', () => {
    expect(stageThrottle({ expectedConnections: '1000000' })).toEqual({ ThrottlingRateLimit: 3612, ThrottlingBurstLimit: 7224 });
  });

  test('1M with a bigger post budget fails naming the account quota and every number', () => {
    expect(() => build({ expectedConnections: '1000000', postBudgetPerSecond: '6000' })).toThrow(
      'postBudgetPerSecond (6000/s) + webSocketRateLimit (3612/s, expectedConnections 1000000) + publishRateLimit (500/s) = 10112/s ' +
        "exceeds the account's API Gateway quota accountRequestsPerSecond = 10000/s",
    );
    // ... and passes once the quota is raised with AWS and said so.
    expect(stageThrottle({ expectedConnections: '1000000', postBudgetPerSecond: '6000', accountRequestsPerSecond: '12000' })).toEqual({
      ThrottlingRateLimit: 3612,
      ThrottlingBurstLimit: 7224,
    });
  });

  test('100k with a smaller account quota fails naming it', () => {
    expect(() => build({ expectedConnections: '100000', accountRequestsPerSecond: '6000' })).toThrow(/= 6500\/s exceeds .*accountRequestsPerSecond = 6000\/s/);
  });

  test('reconnects above the new-connections quota fail naming newConnectionsPerSecond', () => {
    expect(() => build({ expectedConnections: '1000000', newConnectionsPerSecond: '400' })).toThrow(
      /expectedConnections \(1000000\) reconnects 417\/s .* newConnectionsPerSecond = 400\/s/,
    );
    // 2M at the default quota of 500/s: 834 reconnects/s.
    expect(() => build({ expectedConnections: '2000000', accountRequestsPerSecond: '20000' })).toThrow(
      /reconnects 834\/s .*newConnectionsPerSecond = 500\/s/,
    );
  });

  test('an explicit webSocketRateLimit wins, but not below the need (naming both numbers)', () => {
    expect(stageThrottle({ expectedConnections: '1000000', webSocketRateLimit: '2500' })).toEqual({
      ThrottlingRateLimit: 2500,
      ThrottlingBurstLimit: 5000,
    });
    expect(() => build({ expectedConnections: '1000000', webSocketRateLimit: '2000' })).toThrow(
      /webSocketRateLimit \(2000\/s\) is below what expectedConnections \(1000000\) need: 2408\/s/,
    );
  });

  test('expectedConnections must be a positive integer', () => {
    for (const bad of ['0', '-5', '1.5', 'many']) {
      expect(() => build({ expectedConnections: bad })).toThrow(/context expectedConnections/);
    }
  });
});

describe('tracing switch', () => {
  const tracingModes = (context: Record<string, string>) => {
    const t = Template.fromStack(build(context).stack).toJSON().Resources as Resources;
    const fns = Object.values(t).filter((r) => r.Type === 'AWS::Lambda::Function');
    const xray = Object.values(t).filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties).includes('xray:'));
    return { modes: [...new Set(fns.map((f) => f.Properties.TracingConfig?.Mode ?? 'none'))], xrayPolicies: xray.length };
  };

  test('active (default, and true), passthrough, off (and false)', () => {
    expect(tracingModes({})).toEqual({ modes: ['Active'], xrayPolicies: 7 });
    expect(tracingModes({ tracing: 'true' })).toEqual({ modes: ['Active'], xrayPolicies: 7 });
    expect(tracingModes({ tracing: 'passthrough' })).toEqual({ modes: ['PassThrough'], xrayPolicies: 7 });
    expect(tracingModes({ tracing: 'off' })).toEqual({ modes: ['none'], xrayPolicies: 0 });
    expect(tracingModes({ tracing: 'false' })).toEqual({ modes: ['none'], xrayPolicies: 0 });
  });

  test('anything else stops synthesis, naming the context key', () => {
    expect(() => build({ tracing: 'sampled' })).toThrow(/context tracing: expected active, passthrough or off/);
  });
});
