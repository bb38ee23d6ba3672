// `npm run prepare`, which npm runs on `npm ci` / `npm install` in this folder, on
// `npm pack` / `npm publish`, and in this folder when another project runs
// `npm install <path>/clients/js` (npm 10 and 11 link the folder and run its `prepare` there,
// without its devDependencies). So:
// - TypeScript installed here: compile src/ → dist/ (git-ignored; nothing tracked changes);
// - else dist/ already built: keep it;
// - else: `npm ci` here (the devDependencies, as npm does for a git dependency), which runs
//   this script again, now with TypeScript.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit" });
  if (result.error) throw result.error;
  if (result.status !== 0) process.exit(result.status ?? 1);
}

let tsc;
try {
  tsc = createRequire(join(root, "package.json")).resolve("typescript/bin/tsc");
} catch {
  tsc = undefined;
}

if (tsc) {
  run(process.execPath, [tsc, "-p", "tsconfig.json"]);
  console.log("switchboard-client: built dist/");
} else if (existsSync(join(root, "dist/index.js"))) {
  console.log("switchboard-client: dist/ is built (TypeScript is not installed here: not rebuilt)");
} else {
  console.log("switchboard-client: dist/ is missing: installing the build tools here (npm ci)");
  // npm sets npm_execpath to the npm that runs this script; use the same one.
  const npm = process.env.npm_execpath;
  if (npm) run(process.execPath, [npm, "ci", "--no-audit", "--no-fund"]);
  else run("npm", ["ci", "--no-audit", "--no-fund"]);
  if (!existsSync(join(root, "dist/index.js"))) {
    console.error("switchboard-client: dist/ is still missing after npm ci: run `npm ci` in clients/js");
    process.exit(1);
  }
}
