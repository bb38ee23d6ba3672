// TENANTS_FILE on AWS (docs/design.md: Tenants; lib/tenants.ts): the layer, the variable and
// connect's count permissions when the `tenantsFile` context is set, none of them otherwise;
// a file the Rust parser would refuse stops synthesis, naming the place at fault.
import * as cdk from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FUNCTION_NAMES, FunctionName } from '../lib/config';
import { checkTenantsText, SETTINGS_KEYS, TENANTS_FUNCTIONS } from '../lib/tenants';
import { build, Built, validationReport } from './helpers';

type Resources = Record<string, { Type: string; Properties?: any }>;

const CASES: { file: unknown; refused: string | null }[] = JSON.parse(
  fs.readFileSync(path.join(__dirname, 'fixtures', 'tenants-cases.json'), 'utf8'),
).cases;

/** `settings` written to a new file; its path. */
function tenantsFile(settings: unknown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-tenants-test-'));
  const file = path.join(dir, 'tenants.json');
  fs.writeFileSync(file, JSON.stringify(settings));
  return file;
}

const fnOf = (b: Built, res: Resources, name: FunctionName) =>
  res[b.stack.resolve((b.stack.functions[name].node.defaultChild as cdk.CfnElement).logicalId)];

/** The Sids of the statements of `name`'s role policy. */
function sidsOf(b: Built, res: Resources, name: FunctionName): string[] {
  const role = b.stack.resolve((b.stack.functions[name].role!.node.defaultChild as cdk.CfnElement).logicalId);
  return Object.values(res)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x: any) => x.Ref === role))
    .flatMap((p) => p.Properties.PolicyDocument.Statement.map((s: any) => s.Sid as string | undefined))
    .filter((sid): sid is string => sid !== undefined);
}

describe('tenantsFile: TENANTS_FILE as a layer', () => {
  const settings = CASES[1].file;

  test('authorizer, connect, publish-api and publisher get the layer and TENANTS_FILE; connect may count', () => {
    const b = build({ tenantsFile: tenantsFile(settings) });
    const res = Template.fromStack(b.stack).toJSON().Resources as Resources;
    const layers = Object.entries(res).filter(([, r]) => r.Type === 'AWS::Lambda::LayerVersion');
    expect(layers).toHaveLength(1);
    const [layerId, layer] = layers[0];
    expect(layer.Properties.CompatibleArchitectures).toEqual(['x86_64']);
    for (const name of FUNCTION_NAMES) {
      const fn = fnOf(b, res, name);
      if ((TENANTS_FUNCTIONS as readonly string[]).includes(name)) {
        expect(fn.Properties.Layers).toEqual([{ Ref: layerId }]);
        expect(fn.Properties.Environment.Variables.TENANTS_FILE).toBe('/opt/switchboard/tenants.json');
      } else {
        expect(fn.Properties.Layers).toBeUndefined();
        expect(fn.Properties.Environment.Variables.TENANTS_FILE).toBeUndefined();
      }
    }
    expect(sidsOf(b, res, 'connect')).toEqual(expect.arrayContaining(['RosterPut', 'RosterCount', 'RosterCountByUser']));
    // The layer's asset holds the file as given, at switchboard/tenants.json.
    const key: string = layer.Properties.Content.S3Key;
    const assetDir = path.join(b.assembly.directory, `asset.${key.replace(/\.zip$/, '')}`);
    expect(JSON.parse(fs.readFileSync(path.join(assetDir, 'switchboard', 'tenants.json'), 'utf8'))).toEqual(settings);
    expect(validationReport(b.assembly.directory).violations).toEqual([]);
  });

  test('without the context: no layer, no TENANTS_FILE, connect only puts', () => {
    const b = build();
    const res = Template.fromStack(b.stack).toJSON().Resources as Resources;
    expect(Object.values(res).filter((r) => r.Type === 'AWS::Lambda::LayerVersion')).toHaveLength(0);
    for (const name of FUNCTION_NAMES) {
      expect(fnOf(b, res, name).Properties.Environment.Variables.TENANTS_FILE).toBeUndefined();
    }
    expect(sidsOf(b, res, 'connect')).not.toContain('RosterCount');
  });

  test('a bad file stops synthesis naming the place: an unknown key, a negative limit, a missing file', () => {
    expect(() => build({ tenantsFile: tenantsFile({ tenants: { acme: { maxConections: 3 } } }) })).toThrow(
      /context tenantsFile \(.*\): tenants\.acme\.maxConections: unknown setting/,
    );
    expect(() => build({ tenantsFile: tenantsFile({ defaults: { maxConnections: -1 } }) })).toThrow(
      /defaults\.maxConnections: -1 is not a whole number from 1 to 100000000/,
    );
    expect(() => build({ tenantsFile: '/nonexistent/tenants.json' })).toThrow(/tenantsFile \(\/nonexistent\/tenants.json\): cannot be read/);
  });

  test('the synth check judges every shared case as the Rust parser does (tenants-cases.json)', () => {
    expect(CASES.length).toBeGreaterThan(10);
    for (const { file, refused } of CASES) {
      const check = () => checkTenantsText(JSON.stringify(file));
      if (refused === null) expect(check).not.toThrow();
      else expect(check).toThrow(refused);
    }
  });

  test('the key list is the one in tenant-settings.json', () => {
    expect([...SETTINGS_KEYS].sort()).toEqual(
      ['allowedTargets', 'historyTtlSecs', 'maxConnections', 'maxConnectionsPerUser', 'maxPayloadBytes', 'publishBurst', 'publishesPerSecond', 'suspended'],
    );
  });
});
