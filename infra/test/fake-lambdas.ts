// Stand-ins for the `cargo lambda build --output-format zip` output, so tests and
// scripts/infra-test.sh synthesize without a Rust build: per function a real zip holding a
// `bootstrap` whose bytes are a 64-bit ELF header for the chosen machine plus the
// function's name (distinct bytes, so each function gets its own asset as with real builds).
//
//   npx ts-node --transpile-only test/fake-lambdas.ts <dir> [x86_64|arm64]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { FUNCTION_NAMES } from '../lib/config';
import { ElfArchitecture } from '../lib/elf';

const MACHINE: Record<ElfArchitecture, number> = { x86_64: 62, arm64: 183 };

/** A 64-byte ELF64 little-endian executable header for `arch` (no program, just the header). */
export function elfHeader(arch: ElfArchitecture | number): Buffer {
  const h = Buffer.alloc(64);
  h.write('\x7fELF', 0, 'latin1');
  h[4] = 2; // ELFCLASS64
  h[5] = 1; // ELFDATA2LSB
  h[6] = 1; // EV_CURRENT
  h.writeUInt16LE(2, 16); // ET_EXEC
  h.writeUInt16LE(typeof arch === 'number' ? arch : MACHINE[arch], 18);
  h.writeUInt32LE(1, 20); // e_version
  h.writeUInt16LE(64, 52); // e_ehsize
  return h;
}

/** A one-entry zip archive; `deflate` picks method 8 (as cargo lambda writes) over 0 (stored). */
export function zipOf(name: string, content: Buffer, deflate = true): Buffer {
  const data = deflate ? zlib.deflateRawSync(content) : content;
  const nameBytes = Buffer.from(name, 'utf8');
  const crc = zlib.crc32(content);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4); // version needed
  local.writeUInt16LE(deflate ? 8 : 0, 8);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(content.length, 22);
  local.writeUInt16LE(nameBytes.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(0x0314, 4); // made by: Unix, 2.0
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(deflate ? 8 : 0, 10);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(content.length, 24);
  central.writeUInt16LE(nameBytes.length, 28);
  central.writeUInt32LE((0o100755 << 16) >>> 0, 38); // external attributes: an executable file
  central.writeUInt32LE(0, 42); // local header offset
  const cdOffset = local.length + nameBytes.length + data.length;
  const cdSize = central.length + nameBytes.length;
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(1, 8);
  eocd.writeUInt16LE(1, 10);
  eocd.writeUInt32LE(cdSize, 12);
  eocd.writeUInt32LE(cdOffset, 16);
  return Buffer.concat([local, nameBytes, data, central, nameBytes, eocd]);
}

/** Writes `<dir>/<name>/bootstrap.zip` for every function; returns `dir` (a new temp dir by default). */
export function writeFakeLambdas(arch: ElfArchitecture = 'x86_64', dir?: string): string {
  const root = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-lambdas-'));
  for (const name of FUNCTION_NAMES) {
    fs.mkdirSync(path.join(root, name), { recursive: true });
    const bootstrap = Buffer.concat([elfHeader(arch), Buffer.from(name, 'ascii')]);
    fs.writeFileSync(path.join(root, name, 'bootstrap.zip'), zipOf('bootstrap', bootstrap));
  }
  return root;
}

if (require.main === module) {
  const [dir, arch = 'x86_64'] = process.argv.slice(2);
  if (!dir || (arch !== 'x86_64' && arch !== 'arm64')) {
    console.error('usage: fake-lambdas.ts <dir> [x86_64|arm64]');
    process.exit(2);
  }
  writeFakeLambdas(arch, dir);
}
