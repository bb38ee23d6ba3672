// The bootstrap architecture check (ELF header) synthesis relies on.
import * as cdk from 'aws-cdk-lib';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { configFromContext } from '../lib/config';
import { bootstrapArchitecture, elfArchitecture, zipEntryPrefix } from '../lib/elf';
import { SwitchboardStack } from '../lib/switchboard-stack';
import { elfHeader, zipOf } from './fake-lambdas';
import { fakeLambdaDir } from './helpers';

describe('bootstrap architecture (ELF header)', () => {
  test('a zip built for arm64 refuses an x86_64 synth, and the reverse', () => {
    const arm = fakeLambdaDir('arm64');
    const app = new cdk.App({ context: { lambdaDir: arm } });
    expect(() => new SwitchboardStack(app, 'S', { config: configFromContext(app.node) })).toThrow(
      /authorizer\/bootstrap\.zip holds a bootstrap built for arm64, but the stack deploys x86_64 functions.*-c architecture=arm64/,
    );
    const x86 = fakeLambdaDir('x86_64');
    const app2 = new cdk.App({ context: { lambdaDir: x86, architecture: 'arm64' } });
    expect(() => new SwitchboardStack(app2, 'S', { config: configFromContext(app2.node) })).toThrow(/holds a bootstrap built for x86_64, but the stack deploys arm64.*--arm64/);
  });

  test('one wrong zip among six is enough', () => {
    const dir = fakeLambdaDir('x86_64');
    fs.writeFileSync(path.join(dir, 'publisher', 'bootstrap.zip'), zipOf('bootstrap', elfHeader('arm64')));
    const app = new cdk.App({ context: { lambdaDir: dir } });
    expect(() => new SwitchboardStack(app, 'S', { config: configFromContext(app.node) })).toThrow(/publisher\/bootstrap\.zip holds a bootstrap built for arm64/);
  });

  test('reads stored and deflated entries, and a real ELF binary (the first MiB of this Node executable)', () => {
    expect(elfArchitecture(zipEntryPrefix(zipOf('bootstrap', elfHeader('arm64'), false), 'bootstrap', 'z'), 'z')).toBe('arm64');
    expect(elfArchitecture(zipEntryPrefix(zipOf('bootstrap', elfHeader('x86_64'), true), 'bootstrap', 'z'), 'z')).toBe('x86_64');
    const fd = fs.openSync(process.execPath, 'r');
    const node = Buffer.alloc(1024 * 1024);
    fs.readSync(fd, node, 0, node.length, 0);
    fs.closeSync(fd);
    const expected = ({ x64: 'x86_64', arm64: 'arm64' } as Record<string, string>)[process.arch];
    if (process.platform === 'linux' && expected) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-elf-'));
      const zip = path.join(dir, 'bootstrap.zip');
      fs.writeFileSync(zip, zipOf('bootstrap', node));
      expect(bootstrapArchitecture(zip)).toBe(expected);
    }
  });

  test('refuses what is not a Linux x86_64/arm64 executable, naming the problem', () => {
    const check = (zip: Buffer) => () => elfArchitecture(zipEntryPrefix(zip, 'bootstrap', 'z'), 'z');
    expect(check(zipOf('bootstrap', Buffer.from('#!/bin/sh\necho hi\n')))).toThrow(/not an ELF executable/);
    expect(check(zipOf('bootstrap', elfHeader(40)))).toThrow(/ELF machine 40/); // 32-bit ARM
    const elf32 = elfHeader('x86_64');
    elf32[4] = 1;
    expect(check(zipOf('bootstrap', elf32))).toThrow(/64-bit little-endian/);
    expect(check(zipOf('main', elfHeader('x86_64')))).toThrow(/no 'bootstrap' entry/);
    expect(() => zipEntryPrefix(Buffer.from('not a zip at all, just text'), 'bootstrap', 'z')).toThrow(/not a zip archive/);
  });
});
