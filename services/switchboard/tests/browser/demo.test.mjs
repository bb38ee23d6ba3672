// The demo page, in the system's headless Chromium: it gets a dev token, connects with the
// client library (/switchboard-client.js), and shows a message that this test publishes
// through the HTTP API.
import { test } from "node:test";
import assert from "node:assert/strict";
import { publish, startBrowser, startServer } from "./server.mjs";

test("demo page connects with a token and shows a published message", { timeout: 90000 }, async () => {
  const { child, base } = await startServer();
  const chromium = await startBrowser();
  try {
    const page = await chromium.browser.newPage();
    const errors = [];
    page.on("pageerror", (error) => errors.push(error));
    await page.goto(base + "/");
    await page.fill("#tenant", "demo");
    await page.fill("#user", "alice");
    await page.fill("#roles", "publisher");
    await page.click("#mint");
    await page.waitForFunction(() => document.getElementById("token").value.split(".").length === 3);
    const token = await page.inputValue("#token");
    await page.click("#connect");
    await page.waitForFunction(() => document.getElementById("status").textContent === "open");

    // Publish from outside the page, as a backend would.
    const status = await publish(base, token, {
      id: "from-test",
      target: { type: "users", tenant: "demo", users: ["alice"] },
      data: { greeting: "hello from the test" },
    });
    assert.equal(status, 202);

    const frame = page.locator("#frames li", { hasText: "hello from the test" });
    await frame.waitFor({ timeout: 15000 });
    const shown = JSON.parse(await frame.textContent());
    delete shown.cursor; // present when the server keeps history
    assert.deepEqual(shown, { id: "from-test", data: { greeting: "hello from the test" } });

    // The page's own publish button reaches the page too.
    await page.fill("#data", '{"clicked": true}');
    await page.click("#publish");
    await page.locator("#frames li", { hasText: "clicked" }).waitFor({ timeout: 15000 });

    // Disconnect ends the client for good.
    await page.click("#disconnect");
    await page.waitForFunction(() => document.getElementById("status").textContent === "closed");
    assert.equal(await page.isEnabled("#connect"), true);
    if (process.env.DEMO_SCREENSHOT) await page.screenshot({ path: process.env.DEMO_SCREENSHOT });
    assert.deepEqual(errors, []);
  } finally {
    await chromium.close();
    child.kill("SIGTERM");
  }
});
