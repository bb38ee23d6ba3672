// The demo page, in the system's headless Chromium: it gets a dev token, connects over
// WebSocket, and shows a message that this test publishes through the HTTP API.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const binary = process.env.SWITCHBOARD_BIN;
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

function startServer() {
  // No JWT configuration at all: dev mode (--dev), which serves the demo page.
  const env = { PATH: process.env.PATH, RUST_LOG: "warn" };
  const child = spawn(binary, ["serve", "--dev", "--listen", "127.0.0.1:0", "--management-listen", "127.0.0.1:0"], { env, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("server did not start")), 30000);
    createInterface({ input: child.stdout }).on("line", (line) => {
      const match = line.match(/^switchboard listening on (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve({ child, base: match[1] });
      }
    });
    child.on("exit", (code) => reject(new Error(`server exited ${code}`)));
  });
}

test("demo page connects with a token and shows a published message", { timeout: 90000 }, async () => {
  assert.ok(binary, "SWITCHBOARD_BIN must point at the switchboard binary");
  const { child, base } = await startServer();
  const profile = mkdtempSync(join(tmpdir(), "switchboard-chromium-"));
  // A fresh profile per run (launchPersistentContext is playwright's way to give one).
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  try {
    const page = await browser.newPage();
    await page.goto(base + "/");
    await page.fill("#tenant", "demo");
    await page.fill("#user", "alice");
    await page.fill("#roles", "publisher");
    await page.click("#mint");
    await page.waitForFunction(() => document.getElementById("token").value.split(".").length === 3);
    const token = await page.inputValue("#token");
    await page.click("#connect");
    await page.waitForFunction(() => document.getElementById("status").textContent === "connected");

    // Publish from outside the page, as a backend would.
    const res = await fetch(base + "/v1/messages", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ id: "from-test", target: { type: "users", tenant: "demo", users: ["alice"] }, data: { greeting: "hello from the test" } }),
    });
    assert.equal(res.status, 202);

    const frame = page.locator("#frames li", { hasText: "hello from the test" });
    await frame.waitFor({ timeout: 15000 });
    assert.deepEqual(JSON.parse(await frame.textContent()), { id: "from-test", data: { greeting: "hello from the test" } });

    // The page's own publish button reaches the page too.
    await page.fill("#data", '{"clicked": true}');
    await page.click("#publish");
    await page.locator("#frames li", { hasText: "clicked" }).waitFor({ timeout: 15000 });
    if (process.env.DEMO_SCREENSHOT) await page.screenshot({ path: process.env.DEMO_SCREENSHOT });
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
    child.kill("SIGTERM");
  }
});
