// Web Push on AWS (docs/design.md: Web Push; lib/push.ts): off by default; with the VAPID
// context, VAPID_PRIVATE_KEY is a Secrets Manager dynamic reference (never the key) on the
// publisher and the functions that register devices, which also get device grants on `D#…` keys.
import { Template } from 'aws-cdk-lib/assertions';
import * as crypto from 'crypto';
import { FUNCTION_NAMES, FunctionName } from '../lib/config';
import { badPublicKey } from '../lib/push';
import { build, Built, validationReport } from './helpers';
import { historyId as defaultHistoryId, underTest } from './stack-fixture';

/** A fresh VAPID key pair as `switchboard vapid-keys` prints it: the raw points, base64url. */
function vapidKeys(): { publicKey: string; privateKey: string } {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pub = publicKey.export({ format: 'jwk' });
  const priv = privateKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([0x04]), Buffer.from(pub.x!, 'base64url'), Buffer.from(pub.y!, 'base64url')]);
  return { publicKey: point.toString('base64url'), privateKey: priv.d! };
}

const keys = vapidKeys();
const PUSH_CONTEXT = {
  vapidPublicKey: keys.publicKey,
  vapidSubject: 'mailto:ops@example.com',
  vapidPrivateKeySecret: 'switchboard/vapid',
  vapidPrivateKeyField: 'privateKey',
};

let built: Built;
let template: Template;
let json: any;

beforeAll(() => {
  built = build(PUSH_CONTEXT);
  template = Template.fromStack(built.stack);
  json = template.toJSON();
});

const id = (b: Built, name: FunctionName) => b.stack.resolve((b.stack.functions[name].node.defaultChild as any).logicalId);
const envOf = (b: Built, t: any, name: FunctionName): Record<string, unknown> => t.Resources[id(b, name)].Properties.Environment.Variables;
const historyArn = (b: Built) => ({ 'Fn::GetAtt': [b.stack.resolve((b.stack.historyTable.node.defaultChild as any).logicalId), 'Arn'] });
const onDeviceKeys = { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['D#*'] } };

/** The statements of a function's inline policies in template `t`. */
function statements(b: Built, t: any, name: FunctionName): any[] {
  const roleId = t.Resources[id(b, name)].Properties.Role['Fn::GetAtt'][0];
  return Object.values(t.Resources as Record<string, any>)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((ref: any) => ref.Ref === roleId))
    .flatMap((r) => r.Properties.PolicyDocument.Statement);
}

describe('Web Push off (the default)', () => {
  test('no VAPID_* or PUSH_* variable on any function, no device grant', () => {
    const { built: b, template: t } = underTest();
    const j = t.toJSON();
    for (const name of FUNCTION_NAMES) {
      const names = Object.keys(envOf(b, j, name));
      expect(names.filter((n) => n.startsWith('VAPID_') || n.startsWith('PUSH_'))).toEqual([]);
      expect(statements(b, j, name).map((s) => s.Sid)).not.toContain('Devices');
    }
    expect(defaultHistoryId()).toBeDefined();
  });
});

describe('Web Push on (vapidPublicKey, vapidSubject, vapidPrivateKeySecret)', () => {
  test("the publisher's VAPID_PRIVATE_KEY is a Secrets Manager dynamic reference, resolved by CloudFormation at deploy time", () => {
    expect(envOf(built, json, 'publisher')).toMatchObject({
      VAPID_PUBLIC_KEY: keys.publicKey,
      VAPID_SUBJECT: 'mailto:ops@example.com',
      VAPID_PRIVATE_KEY: '{{resolve:secretsmanager:switchboard/vapid:SecretString:privateKey::}}',
      PUSH_CONCURRENCY_PER_SERVICE: '50',
      PUSH_TIMEOUT_SECS: '10',
    });
  });

  test('the template never holds the private key: the publisher, default and publish-api have the variable, only as a reference', () => {
    const text = JSON.stringify(json);
    expect(text).not.toContain(keys.privateKey);
    const holders = FUNCTION_NAMES.filter((n) => 'VAPID_PRIVATE_KEY' in envOf(built, json, n));
    expect(holders.sort()).toEqual(['default', 'publish-api', 'publisher']);
    for (const match of text.matchAll(/"VAPID_PRIVATE_KEY":("[^"]*"|\{[^}]*\})/g)) {
      expect(match[1]).toMatch(/^"\{\{resolve:secretsmanager:[^"]+\}\}"$/);
    }
  });

  test('a secret without vapidPrivateKeyField: the whole secret string is the key', () => {
    const b = build({ ...PUSH_CONTEXT, vapidPrivateKeyField: '' });
    const t = Template.fromStack(b.stack).toJSON();
    expect(envOf(b, t, 'publisher').VAPID_PRIVATE_KEY).toBe('{{resolve:secretsmanager:switchboard/vapid:SecretString:::}}');
  });

  test('default and publish-api register devices: the VAPID settings (all three: one setting on the Rust side) and the device settings', () => {
    const b = build({ ...PUSH_CONTEXT, pushMaxDevicesPerUser: '5', pushDeviceTtlDays: '30' });
    const t = Template.fromStack(b.stack).toJSON();
    for (const name of ['default', 'publish-api'] as const) {
      const env = envOf(b, t, name);
      expect(env).toMatchObject({
        VAPID_PUBLIC_KEY: keys.publicKey,
        VAPID_SUBJECT: 'mailto:ops@example.com',
        PUSH_MAX_DEVICES_PER_USER: '5',
        PUSH_DEVICE_TTL_DAYS: '30',
        HISTORY_TABLE: { Ref: b.stack.resolve((b.stack.historyTable.node.defaultChild as any).logicalId) },
      });
      expect(env.VAPID_PRIVATE_KEY).toBe('{{resolve:secretsmanager:switchboard/vapid:SecretString:privateKey::}}');
      expect(env.PUSH_CONCURRENCY_PER_SERVICE).toBeUndefined();
    }
    for (const name of ['authorizer', 'connect', 'disconnect'] as const) {
      expect(Object.keys(envOf(b, t, name)).filter((n) => n.startsWith('VAPID_') || n.startsWith('PUSH_'))).toEqual([]);
    }
  });

  test('device grants on the history table, on D#<tenant> keys only: default and publish-api Query/PutItem/DeleteItem, the publisher Query/DeleteItem', () => {
    const devices = (name: FunctionName) => statements(built, json, name).filter((s) => s.Sid === 'Devices');
    for (const name of ['default', 'publish-api'] as const) {
      expect(devices(name)).toEqual([
        {
          Sid: 'Devices',
          Effect: 'Allow',
          Action: ['dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
          Resource: historyArn(built),
          Condition: onDeviceKeys,
        },
      ]);
    }
    expect(devices('publisher')).toEqual([
      { Sid: 'Devices', Effect: 'Allow', Action: ['dynamodb:Query', 'dynamodb:DeleteItem'], Resource: historyArn(built), Condition: onDeviceKeys },
    ]);
    for (const name of ['authorizer', 'connect', 'disconnect'] as const) expect(devices(name)).toEqual([]);
    // No function may read the secret itself: CloudFormation resolves the reference.
    const text = JSON.stringify(json);
    expect(text).not.toContain('secretsmanager:GetSecretValue');
  });

  test('the push routes are on the HTTP API (they are there with push off too)', () => {
    const keysOf = (t: any) =>
      Object.values(t.Resources as Record<string, any>)
        .filter((r) => r.Type === 'AWS::ApiGatewayV2::Route')
        .map((r) => r.Properties.RouteKey);
    for (const t of [json, underTest().template.toJSON()]) {
      expect(keysOf(t)).toEqual(
        expect.arrayContaining(['POST /v1/push/subscriptions', 'DELETE /v1/push/subscriptions/{id}', 'GET /v1/push/vapid-public-key']),
      );
    }
  });

  test('egress: no function is in a VPC (push services are reached over the internet, no NAT needed)', () => {
    for (const name of FUNCTION_NAMES) expect(json.Resources[id(built, name)].Properties.VpcConfig).toBeUndefined();
  });

  test('the dashboard shows the publisher\'s Web Push metrics (only with push on)', () => {
    const body = (t: any) =>
      JSON.stringify(Object.values(t.Resources as Record<string, any>).find((r) => r.Type === 'AWS::CloudWatch::Dashboard')!.Properties.DashboardBody);
    for (const metric of ['Pushed', 'PushFailed', 'DevicesPruned']) {
      expect(body(json)).toContain(`\\"${metric}\\"`);
      expect(body(underTest().template.toJSON())).not.toContain(`\\"${metric}\\"`);
    }
  });

  test('cdk-nag: no new finding', () => {
    const report = validationReport(built.assembly.directory);
    expect(report.violations).toEqual([]);
    expect(report.conclusions).toEqual(['AwsSolutions: success']);
  });
});

describe('the Web Push context is checked at synth', () => {
  test('all three or none: a partial set names what is missing', () => {
    expect(() => build({ vapidPublicKey: keys.publicKey })).toThrow(
      /context vapidSubject, vapidPrivateKeySecret: Web Push needs all of vapidPublicKey, vapidSubject, vapidPrivateKeySecret/,
    );
    expect(() => build({ vapidPrivateKeySecret: 'switchboard/vapid', vapidSubject: 'mailto:ops@example.com' })).toThrow(/context vapidPublicKey:/);
  });

  test('a private key in the context is refused (it would be in the template in plain text)', () => {
    expect(() => build({ ...PUSH_CONTEXT, vapidPrivateKey: keys.privateKey })).toThrow(/context vapidPrivateKey: .*Secrets Manager/);
  });

  test('a malformed public key or subject, and settings out of bounds', () => {
    expect(() => build({ ...PUSH_CONTEXT, vapidPublicKey: keys.privateKey })).toThrow(/context vapidPublicKey: decodes to 32 bytes/);
    expect(() => build({ ...PUSH_CONTEXT, vapidSubject: 'ops@example.com' })).toThrow(/context vapidSubject: must be a mailto: or https: URL/);
    expect(() => build({ ...PUSH_CONTEXT, pushMaxDevicesPerUser: '101' })).toThrow(/pushMaxDevicesPerUser/);
    expect(() => build({ ...PUSH_CONTEXT, pushDeviceTtlDays: '0' })).toThrow(/pushDeviceTtlDays/);
    expect(() => build({ ...PUSH_CONTEXT, pushConcurrencyPerService: '1001' })).toThrow(/pushConcurrencyPerService/);
    expect(() => build({ ...PUSH_CONTEXT, pushTimeoutSecs: '61' })).toThrow(/pushTimeoutSecs/);
  });

  test('badPublicKey', () => {
    expect(badPublicKey(keys.publicKey)).toBeUndefined();
    expect(badPublicKey('not base64!')).toBe('is not base64url');
    const compressed = Buffer.alloc(65, 1).toString('base64url');
    expect(badPublicKey(compressed)).toMatch(/first byte 0x04/);
  });
});
