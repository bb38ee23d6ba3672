// Loads a module of src/ (TypeScript, maybe JSX) for the unit tests: bundled by esbuild into
// a temporary ESM file (Node 20 runs no TypeScript) and imported from there.
import { build } from "esbuild";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = mkdtempSync(join(tmpdir(), "console-test-"));

export async function load(path) {
  const result = await build({
    entryPoints: [join(root, path)],
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    jsx: "automatic",
    jsxImportSource: "preact",
    write: false,
    logLevel: "error",
  });
  const file = join(out, path.replace(/[\\/]/g, "_") + ".mjs");
  writeFileSync(file, result.outputFiles[0].text);
  return import(pathToFileURL(file).href);
}

/** Lets pending promise callbacks run (timers are faked; setImmediate is not). */
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}
