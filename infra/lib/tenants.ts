// TENANTS_FILE on AWS (docs/design.md: Tenants): the file named by the `tenantsFile` context
// is checked at synth and shipped as a Lambda layer. Layers unpack under /opt, so the
// functions that enforce tenant settings (authorizer, connect, publish-api, publisher) read
// it at TENANTS_FILE_PATH, once, at init: a change is a redeploy (a new layer version).
//
// The check is the Rust parser's (services/core/src/tenants/settings.rs), so a file synth
// accepts never stops a function at start: the keys and bounds come from
// tenant-settings.json, which a Rust test compares with the Rust constants, and
// test/fixtures/tenants-cases.json holds files both checkers must judge alike.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** Folder of the layer's content, under /opt (shared with the issuers layer; other file). */
export const TENANTS_LAYER_DIR = 'switchboard';
/** Where the functions find the settings file (the value of TENANTS_FILE). */
export const TENANTS_FILE_PATH = `/opt/${TENANTS_LAYER_DIR}/tenants.json`;
/** The functions given TENANTS_FILE and the layer. */
export const TENANTS_FUNCTIONS = ['authorizer', 'connect', 'publish-api', 'publisher'] as const;
/** Largest settings file shipped (the Rust side's MAX_SETTINGS_FILE_BYTES). */
export const MAX_TENANTS_FILE_BYTES = 16 * 1024 * 1024;
/** Longest tenant id, in characters (model/src/ids.rs). */
const MAX_ID_CHARS = 128;

interface SettingsRules {
  counts: Record<string, number>;
  allowedTargets: string[];
  flags: string[];
}

/** The settings keys and their bounds, from tenant-settings.json (the one list). */
export const SETTINGS_RULES: SettingsRules = JSON.parse(fs.readFileSync(path.join(__dirname, 'tenant-settings.json'), 'utf8'));
/** Every key a settings object may hold. */
export const SETTINGS_KEYS: string[] = [...Object.keys(SETTINGS_RULES.counts), 'allowedTargets', ...SETTINGS_RULES.flags];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Why `id` is not a tenant id (TenantId::parse), or undefined. */
export function badTenantId(id: string): string | undefined {
  const chars = [...id];
  if (chars.length === 0) return 'must not be empty';
  if (chars.length > MAX_ID_CHARS) return `must be at most ${MAX_ID_CHARS} characters (got ${chars.length})`;
  // Rust's char::is_control: the C0 and C1 control characters.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(id)) return 'must not contain control characters';
  if (id.includes('#')) return "must not contain '#'";
  if (id === '*') return "'*' is reserved";
  return undefined;
}

/**
 * Checks one settings object at `place` (`defaults`, `tenants.<id>`) and returns whether it
 * sets `publishesPerSecond` / `publishBurst` (a burst needs a rate, its own or the defaults').
 */
function checkSettings(value: unknown, place: string): { rate: boolean; burst: boolean } {
  if (!isObject(value)) throw new Error(`${place}: must be an object of settings`);
  for (const key of Object.keys(value)) {
    if (!SETTINGS_KEYS.includes(key)) {
      throw new Error(`${place}.${key}: unknown setting (expected one of ${SETTINGS_KEYS.join(', ')})`);
    }
  }
  for (const [key, max] of Object.entries(SETTINGS_RULES.counts)) {
    const n = value[key];
    if (n !== undefined && !(typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= max)) {
      throw new Error(`${place}.${key}: ${JSON.stringify(n)} is not a whole number from 1 to ${max}`);
    }
  }
  const targets = value.allowedTargets;
  if (targets !== undefined) {
    if (!Array.isArray(targets)) throw new Error(`${place}.allowedTargets: must be a list of target types`);
    for (const t of targets) {
      if (typeof t !== 'string' || !SETTINGS_RULES.allowedTargets.includes(t)) {
        throw new Error(`${place}.allowedTargets: ${JSON.stringify(t)} is not one of ${SETTINGS_RULES.allowedTargets.join(', ')}`);
      }
    }
  }
  for (const flag of SETTINGS_RULES.flags) {
    if (value[flag] !== undefined && typeof value[flag] !== 'boolean') {
      throw new Error(`${place}.${flag}: ${JSON.stringify(value[flag])} is not true or false`);
    }
  }
  return { rate: value.publishesPerSecond !== undefined, burst: value.publishBurst !== undefined };
}

/** Checks a settings file's text as the Rust parser does; the error names the place at fault. */
export function checkTenantsText(text: string): void {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`);
  }
  if (!isObject(doc)) throw new Error('must be a JSON object with `defaults` and `tenants`');
  for (const key of Object.keys(doc)) {
    if (key !== 'defaults' && key !== 'tenants') throw new Error(`unknown key \`${key}\` (expected defaults, tenants)`);
  }
  const defaults = doc.defaults === undefined ? { rate: false, burst: false } : checkSettings(doc.defaults, 'defaults');
  if (defaults.burst && !defaults.rate) throw new Error('defaults.publishBurst: set without publishesPerSecond');
  if (doc.tenants === undefined) return;
  if (!isObject(doc.tenants)) throw new Error('tenants: must be an object of tenant ids');
  for (const [id, value] of Object.entries(doc.tenants)) {
    const place = `tenants.${id}`;
    const why = badTenantId(id);
    if (why) throw new Error(`${place}: bad tenant id: ${why}`);
    const own = checkSettings(value, place);
    if ((own.burst || defaults.burst) && !(own.rate || defaults.rate)) {
      throw new Error(`${place}.publishBurst: set without publishesPerSecond`);
    }
  }
}

/**
 * Checks the settings file and stages the layer: a new folder holding
 * `switchboard/tenants.json` (the file as given). Returns the folder (the layer's asset).
 */
export function stageTenantsFile(file: string): string {
  const fail = (why: string): never => {
    throw new Error(`context tenantsFile (${file}): ${why}`);
  };
  let text = '';
  try {
    const size = fs.statSync(file).size;
    if (size > MAX_TENANTS_FILE_BYTES) fail(`${size} bytes, over ${MAX_TENANTS_FILE_BYTES}`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as Error).message.startsWith('context tenantsFile')) throw e;
    fail(`cannot be read: ${(e as Error).message}`);
  }
  try {
    checkTenantsText(text);
  } catch (e) {
    fail((e as Error).message);
  }
  const staged = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-tenants-'));
  fs.mkdirSync(path.join(staged, TENANTS_LAYER_DIR));
  fs.writeFileSync(path.join(staged, TENANTS_LAYER_DIR, 'tenants.json'), text);
  return staged;
}
