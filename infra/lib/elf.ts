// Which CPU a `cargo lambda` zip was built for: reads the `bootstrap` entry of the zip and
// the `e_machine` field of its ELF header, so synthesis refuses an x86_64 build deployed
// as arm64 (or the reverse), which Lambda would only report at the first invocation as
// `Runtime.InvalidEntrypoint` / "exec format error".
//
// Only what that needs: the zip's end-of-central-directory record, the central directory
// entry named `bootstrap`, its local header, and the first bytes of its data (stored, or
// deflated: a prefix of the deflate stream inflated with a sync flush). ZIP64 archives are
// refused (a Lambda zip is far below 4 GiB).

import * as fs from 'fs';
import * as zlib from 'zlib';

export type ElfArchitecture = 'x86_64' | 'arm64';

/** ELF `e_machine` values of the two Lambda architectures. */
const EM_X86_64 = 62;
const EM_AARCH64 = 183;

/** Enough of the deflate stream to hold the 64-byte ELF header. */
const PREFIX_BYTES = 64 * 1024;

export class BootstrapError extends Error {}

/** The architecture of a 64-bit little-endian ELF header, or an error saying what it is not. */
export function elfArchitecture(header: Buffer, what: string): ElfArchitecture {
  if (header.length < 20 || header.readUInt32BE(0) !== 0x7f454c46) {
    throw new BootstrapError(`${what} is not an ELF executable (a Lambda bootstrap must be a Linux binary)`);
  }
  if (header[4] !== 2 || header[5] !== 1) {
    throw new BootstrapError(`${what} is not a 64-bit little-endian ELF file`);
  }
  const machine = header.readUInt16LE(18);
  switch (machine) {
    case EM_X86_64:
      return 'x86_64';
    case EM_AARCH64:
      return 'arm64';
    default:
      throw new BootstrapError(`${what} is built for ELF machine ${machine}, neither x86_64 (62) nor arm64 (183)`);
  }
}

/** The first bytes (at least 64 when the file is that long) of the entry `name` of a zip. */
export function zipEntryPrefix(zip: Buffer, name: string, what: string): Buffer {
  const eocd = findEndOfCentralDirectory(zip, what);
  const entries = zip.readUInt16LE(eocd + 10);
  const cdOffset = zip.readUInt32LE(eocd + 16);
  if (cdOffset === 0xffffffff || entries === 0xffff) throw new BootstrapError(`${what}: ZIP64 archives are not supported`);
  let at = cdOffset;
  for (let i = 0; i < entries; i++) {
    if (at + 46 > zip.length || zip.readUInt32LE(at) !== 0x02014b50) throw new BootstrapError(`${what}: corrupt central directory`);
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localOffset = zip.readUInt32LE(at + 42);
    const entryName = zip.subarray(at + 46, at + 46 + nameLength).toString('utf8');
    if (entryName === name) return entryData(zip, { method, compressedSize, localOffset }, `${what}: ${name}`);
    at += 46 + nameLength + extraLength + commentLength;
  }
  throw new BootstrapError(`${what} has no '${name}' entry (cargo lambda zips hold the binary as 'bootstrap')`);
}

function findEndOfCentralDirectory(zip: Buffer, what: string): number {
  // The record is 22 bytes plus a comment of at most 65,535 bytes, at the end of the file.
  const lowest = Math.max(0, zip.length - 22 - 0xffff);
  for (let at = zip.length - 22; at >= lowest; at--) {
    if (zip.readUInt32LE(at) === 0x06054b50) return at;
  }
  throw new BootstrapError(`${what} is not a zip archive`);
}

function entryData(zip: Buffer, e: { method: number; compressedSize: number; localOffset: number }, what: string): Buffer {
  const at = e.localOffset;
  if (at + 30 > zip.length || zip.readUInt32LE(at) !== 0x04034b50) throw new BootstrapError(`${what}: corrupt local header`);
  const start = at + 30 + zip.readUInt16LE(at + 26) + zip.readUInt16LE(at + 28);
  const data = zip.subarray(start, Math.min(zip.length, start + Math.min(e.compressedSize, PREFIX_BYTES)));
  switch (e.method) {
    case 0:
      return data;
    case 8:
      try {
        return zlib.inflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      } catch (err) {
        throw new BootstrapError(`${what}: cannot inflate (${(err as Error).message})`);
      }
    default:
      throw new BootstrapError(`${what}: unsupported compression method ${e.method}`);
  }
}

/** The architecture the `bootstrap` inside a `cargo lambda` zip was built for. */
export function bootstrapArchitecture(zipPath: string): ElfArchitecture {
  const zip = fs.readFileSync(zipPath);
  return elfArchitecture(zipEntryPrefix(zip, 'bootstrap', zipPath), `${zipPath}: bootstrap`);
}
