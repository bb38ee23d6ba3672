// The console as three files the switchboard binary embeds (include_str!/include_bytes!) and
// serves at /console: index.html, console.js (src/main.tsx with Preact, uPlot and the client
// library bundled in, minified) and console.css (src/console.css with uPlot's CSS). So the
// binary builds without Node. `write` (`npm run bundle`) regenerates the committed copies;
// `check` (in `npm test`) fails when one differs from a fresh build. Both print the size of
// console.js + console.css minified and gzipped (the goal is at most 102,400 bytes).
//
//   node scripts/bundle.mjs write|check
import { build } from "esbuild";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const GOAL = 102_400;
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const assets = join(root, "../services/switchboard/src/console/assets");

async function bundle(entry, loader) {
  const result = await build({
    entryPoints: [join(root, entry)],
    bundle: true,
    format: "esm",
    target: "es2020",
    platform: "browser",
    minify: true,
    legalComments: "none",
    jsx: "automatic",
    jsxImportSource: "preact",
    loader,
    write: false,
    logLevel: "error",
    charset: "utf8",
  });
  return result.outputFiles[0].text;
}

const jsHeader =
  "// Generated from console/src by `npm run bundle` in console/: do not edit. Bundles Preact (MIT),\n" +
  "// uPlot (MIT) and clients/js (Apache-2.0).\n";
const cssHeader = "/* Generated from console/src by `npm run bundle` in console/: do not edit. */\n";

const mode = process.argv[2];
if (mode !== "write" && mode !== "check") {
  console.error("usage: node scripts/bundle.mjs write|check");
  process.exit(2);
}
const js = await bundle("src/main.tsx");
const css = await bundle("src/console.css");
const fresh = {
  "index.html": readFileSync(join(root, "src/index.html"), "utf8"),
  "console.js": jsHeader + js,
  "console.css": cssHeader + css,
};
let stale = 0;
for (const [name, text] of Object.entries(fresh)) {
  const path = join(assets, name);
  const where = relative(process.cwd(), path);
  if (mode === "write") {
    writeFileSync(path, text);
    console.log(`bundle: wrote ${where}`);
    continue;
  }
  let current = "";
  try {
    current = readFileSync(path, "utf8");
  } catch {
    // missing: reported below
  }
  if (current !== text) {
    console.error(`bundle: ${where} is stale or missing: run \`npm run bundle\` in console/ and commit it`);
    stale += 1;
  } else {
    console.log(`bundle: ${where} is up to date`);
  }
}
const minified = Buffer.byteLength(js) + Buffer.byteLength(css);
const gzipped = gzipSync(js, { level: 9 }).length + gzipSync(css, { level: 9 }).length;
console.log(
  `console bundle size (console.js + console.css, with Preact, uPlot and the client): ` +
    `${minified} bytes minified, ${gzipped} bytes minified + gzipped (goal ≤ ${GOAL})`,
);
if (stale > 0) process.exit(1);
