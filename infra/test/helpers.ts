// Test fixtures: a folder of tiny (empty, but valid) zip files standing in for the
// `cargo lambda build` output, so the tests need no Rust build.
import * as cdk from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { configFromContext, FUNCTION_NAMES } from '../lib/config';
import { SwitchboardStack } from '../lib/switchboard-stack';

/** An empty zip archive: just the 22-byte end-of-central-directory record. */
const EMPTY_ZIP = Buffer.from([0x50, 0x4b, 0x05, 0x06, ...new Array(18).fill(0)]);

export function fakeLambdaDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-lambdas-'));
  for (const name of FUNCTION_NAMES) {
    fs.mkdirSync(path.join(dir, name));
    // The function's name as the archive comment: distinct bytes, so each function gets
    // its own asset as with real builds, and still a valid zip.
    const comment = Buffer.from(name, 'ascii');
    const zip = Buffer.concat([EMPTY_ZIP, comment]);
    zip.writeUInt16LE(comment.length, 20);
    fs.writeFileSync(path.join(dir, name, 'bootstrap.zip'), zip);
  }
  return dir;
}

export interface Built {
  app: cdk.App;
  stack: SwitchboardStack;
  assembly: cdk.cx_api.CloudAssembly;
  outdir: string;
}

/** Builds the app as bin/switchboard.ts does, with cdk-nag, and synthesizes it. */
export function build(context: Record<string, unknown> = {}): Built {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-cdkout-'));
  const app = new cdk.App({
    outdir,
    context: { lambdaDir: fakeLambdaDir(), ...context },
  });
  const stack = new SwitchboardStack(app, 'Switchboard', {
    config: configFromContext(app.node),
    synthesizer: new cdk.DefaultStackSynthesizer({ generateBootstrapVersionRule: false }),
  });
  cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  const assembly = app.synth();
  return { app, stack, assembly, outdir };
}

export interface Violation {
  ruleName: string;
  description?: string;
  severity?: string;
  acknowledgedAt?: string;
}

export interface ValidationReport {
  /** Findings nobody acknowledged: these fail synthesis (errors) or are shown (warnings). */
  violations: Violation[];
  /** Findings acknowledged with `Validations.of(...).acknowledge`. */
  acknowledged: Violation[];
  conclusions: string[];
}

/** The findings of every validation plugin (cdk-nag included), from the report CDK writes. */
export function validationReport(assemblyDir: string): ValidationReport {
  const report = JSON.parse(fs.readFileSync(path.join(assemblyDir, 'validation-report.json'), 'utf8'));
  const out: ValidationReport = { violations: [], acknowledged: [], conclusions: [] };
  for (const plugin of report.pluginReports ?? []) {
    out.conclusions.push(`${plugin.pluginName}: ${plugin.conclusion}`);
    out.violations.push(...(plugin.violations ?? []));
    out.acknowledged.push(...(plugin.suppressedViolations ?? []));
  }
  return out;
}
