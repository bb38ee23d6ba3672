// JWT_ISSUERS_FILE on AWS (docs/design.md: Identity per issuer): the file named by the
// `jwtIssuersFile` context is checked at synth and shipped, with every JWKS file it names,
// as a Lambda layer. Layers unpack under /opt, so the functions that verify tokens
// (authorizer, default, publish-api) read it at ISSUERS_FILE_PATH; each `jwksFile` is
// copied beside it and rewritten to its /opt path. The Rust side checks everything else
// at start-up (an invalid file stops the function, which the key-failure alarm reports).

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** Folder of the layer's content, under /opt. */
export const ISSUERS_LAYER_DIR = 'switchboard';
/** Where the functions find the issuers file (the value of JWT_ISSUERS_FILE). */
export const ISSUERS_FILE_PATH = `/opt/${ISSUERS_LAYER_DIR}/issuers.json`;

function fail(file: string, why: string): never {
  throw new Error(`context jwtIssuersFile (${file}): ${why}`);
}

/**
 * Checks the issuers file's shape (an `issuers` list, each entry with an `issuer` and
 * exactly one of `jwksUrl`, `jwksFile`) and stages the layer: a new folder holding
 * `switchboard/issuers.json` and `switchboard/jwks-<n>.json` for each `jwksFile` (a
 * relative one resolved against the issuers file's folder, as the Rust side does).
 * Returns the folder (the layer's asset).
 */
export function stageIssuersFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    fail(file, `cannot be read: ${(e as Error).message}`);
  }
  let doc: any;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    fail(file, `is not JSON: ${(e as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || !Array.isArray(doc.issuers) || doc.issuers.length === 0) {
    fail(file, 'expected {"issuers": [ ... ]} with at least one issuer');
  }
  const staged = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-issuers-'));
  const dir = path.join(staged, ISSUERS_LAYER_DIR);
  fs.mkdirSync(dir);
  doc.issuers.forEach((entry: any, n: number) => {
    if (!entry || typeof entry !== 'object' || typeof entry.issuer !== 'string' || entry.issuer.trim() === '') {
      fail(file, `issuers[${n}]: "issuer" must be a non-empty string`);
    }
    const hasUrl = entry.jwksUrl !== undefined;
    const hasFile = entry.jwksFile !== undefined;
    if (hasUrl === hasFile) fail(file, `issuers[${n}] (${entry.issuer}): set exactly one of "jwksUrl", "jwksFile"`);
    if (hasFile) {
      if (typeof entry.jwksFile !== 'string' || entry.jwksFile.trim() === '') {
        fail(file, `issuers[${n}] (${entry.issuer}): "jwksFile" must be a non-empty string`);
      }
      const source = path.resolve(path.dirname(file), entry.jwksFile);
      if (!fs.existsSync(source)) fail(file, `issuers[${n}] (${entry.issuer}): jwksFile ${source} does not exist`);
      const name = `jwks-${n}.json`;
      fs.copyFileSync(source, path.join(dir, name));
      entry.jwksFile = `/opt/${ISSUERS_LAYER_DIR}/${name}`;
    }
  });
  fs.writeFileSync(path.join(dir, 'issuers.json'), JSON.stringify(doc, null, 2));
  return staged;
}
