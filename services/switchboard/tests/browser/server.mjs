// Starts `switchboard serve` (SWITCHBOARD_BIN) in dev mode on a free port, and Chromium
// (Debian's, CHROMIUM_PATH) with a fresh profile, for the browser tests.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

export const binary = process.env.SWITCHBOARD_BIN;
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** Where each server's `/metrics` is (its management listener), by its `base`. */
const metricsBases = new Map();

/** The URL of `/metrics` of the server at `base`. */
export function metricsUrl(base) {
  return (metricsBases.get(base) || base) + "/metrics";
}

/** `serve` with `env` added, on `listen` (default any free port); in dev mode (no JWT
 *  configuration) unless `dev` is false; `args` are added to the command line.
 *  Resolves to { child, base } once both addresses are printed. */
export function startServer(env = {}, listen = "127.0.0.1:0", { dev = true, args: extra = [] } = {}) {
  if (!binary) throw new Error("SWITCHBOARD_BIN must point at the switchboard binary");
  // Newer binaries make dev mode explicit and serve the management API on its own
  // listener: ask for dev mode, and a free port for that listener, when the flags exist.
  const help = execFileSync(binary, ["serve", "--help"], { encoding: "utf8" });
  const args = ["serve", "--listen", listen];
  if (dev && /\s--dev[\s,=]/.test(help)) args.push("--dev");
  const management = /\s--management-listen[\s,=]/.test(help);
  if (management) args.push("--management-listen", "127.0.0.1:0");
  args.push(...extra);
  const child = spawn(binary, args, {
    env: { PATH: process.env.PATH, RUST_LOG: "warn", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("server did not start")), 30000);
    let base;
    createInterface({ input: child.stdout }).on("line", (line) => {
      const match = line.match(/^switchboard listening on (http:\/\/\S+)/);
      if (match) base = match[1];
      // `/metrics` is on the management listener.
      const managed = line.match(/^switchboard management API on (http:\/\/[^/\s]+)/);
      if (managed && base) metricsBases.set(base, managed[1]);
      if (base && (managed || !management)) {
        clearTimeout(timer);
        resolve({ child, base });
      }
    });
    child.on("exit", (code) => reject(new Error(`server exited ${code}`)));
  });
}

/** Headless Chromium with a fresh profile; `close()` also removes the profile. */
export async function startBrowser() {
  const profile = mkdtempSync(join(tmpdir(), "switchboard-chromium-"));
  // launchPersistentContext is playwright's way to give a fresh profile per run.
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** POST /v1/messages as a backend would; returns the HTTP status. */
export async function publish(base, token, envelope) {
  const res = await fetch(base + "/v1/messages", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(envelope),
  });
  await res.arrayBuffer();
  return res.status;
}

/** A dev token (`POST /dev/token`) for `user` of tenant `demo` holding `roles`. */
export async function devToken(base, user, roles = []) {
  const res = await fetch(base + "/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tenant: "demo", user, roles }),
  });
  if (res.status !== 200) throw new Error(`POST /dev/token answered ${res.status}`);
  return (await res.json()).token;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}
