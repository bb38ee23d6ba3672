// Test fixtures: a folder of tiny zips standing in for the `cargo lambda build` output
// (a `bootstrap` that is just an ELF header for the chosen architecture; see
// fake-lambdas.ts), so the tests need no Rust build.
import * as cdk from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { configFromContext } from '../lib/config';
import { ElfArchitecture } from '../lib/elf';
import { SwitchboardStack } from '../lib/switchboard-stack';
import { writeFakeLambdas } from './fake-lambdas';

export function fakeLambdaDir(arch: ElfArchitecture = 'x86_64'): string {
  return writeFakeLambdas(arch);
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
    context: { lambdaDir: fakeLambdaDir(context.architecture === 'arm64' ? 'arm64' : 'x86_64'), ...context },
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
