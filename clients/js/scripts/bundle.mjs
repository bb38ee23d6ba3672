// The library as one ESM file for the switchboard binary's demo page, which serves it with
// include_str! (so the binary builds without Node). `write` (`npm run bundle`) regenerates
// the committed copy; `check` (in `npm test`) fails when it differs from a fresh bundle.
// `npm run build` never writes it: building changes no tracked file. Both print the size
// of the minified + gzipped bundle (the goal is at most 5 KB).
//
//   node scripts/bundle.mjs write|check
import { build } from "esbuild";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const committed = join(root, "../../services/switchboard/src/serve/switchboard-client.js");
const header =
  "// Generated from clients/js/src by `npm run bundle` in clients/js: do not edit.\n" +
  "// The switchboard binary serves it to the demo page (include_str!).\n";

async function bundle(minify) {
  const result = await build({
    entryPoints: [join(root, "src/index.ts")],
    bundle: true,
    format: "esm",
    target: "es2020",
    platform: "neutral",
    minify,
    legalComments: "none",
    write: false,
    logLevel: "error",
  });
  return result.outputFiles[0].text;
}

const mode = process.argv[2];
if (mode !== "write" && mode !== "check") {
  console.error("usage: node scripts/bundle.mjs write|check");
  process.exit(2);
}
const fresh = header + (await bundle(false));
const where = relative(process.cwd(), committed);
if (mode === "write") {
  writeFileSync(committed, fresh);
  console.log(`bundle: wrote ${where}`);
} else {
  let current = "";
  try {
    current = readFileSync(committed, "utf8");
  } catch {
    // missing: reported below
  }
  if (current !== fresh) {
    console.error(`bundle: ${where} is stale or missing: run \`npm run bundle\` in clients/js and commit it`);
    process.exit(1);
  }
  console.log(`bundle: ${where} is up to date`);
}
const minified = await bundle(true);
const gzipped = gzipSync(minified, { level: 9 }).length;
console.log(
  `bundle size: ${minified.length} bytes minified, ${gzipped} bytes minified + gzipped (goal ≤ 5120)`,
);
