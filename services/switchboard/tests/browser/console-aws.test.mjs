// The operator console against the AWS path (issue 26), in the system's headless Chromium:
// `switchboard console --api <api>` in front of the console_stack rig
// (services/lambdas/examples/console_stack: the real publish-api and publisher Lambda
// binaries under an emulated Runtime API, behind a fake HTTP API, tables on DynamoDB
// Local). The rig writes roster connections as $connect would and keeps what the fake
// @connections endpoint receives. Needs CONSOLE_STACK_BIN, DYNAMODB_ENDPOINT and
// SWITCHBOARD_BIN (scripts/browser-test.sh sets all three).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { createInterface } from "node:readline";
import { binary, startBrowser } from "./server.mjs";

const stackBin = process.env.CONSOLE_STACK_BIN;
const SECRET = "console-aws-test-secret-of-32-bytes!";
const WAIT_MS = 20000;

/** An HS256 token as the deployment's single key source would sign it. */
function mint(tenant, user, roles) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub: user, tenant, roles, iat: now, exp: now + 3600 })}`;
  return `${unsigned}.${createHmac("sha256", SECRET).update(unsigned).digest("base64url")}`;
}

/** Spawns `command` and resolves { child, match } once a stdout line matches `pattern`. */
function startUntilLine(command, args, env, pattern) {
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH, RUST_LOG: "warn", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} did not start`)), 60000);
    createInterface({ input: child.stdout }).on("line", (line) => {
      const match = line.match(pattern);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match });
      }
    });
    child.on("exit", (code) => reject(new Error(`${command} exited ${code}`)));
  });
}

/** Resolves once `check()` answers truthy (polled), else fails naming `what`. */
async function until(what, check, timeout = WAIT_MS) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    last = await check();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

async function rigCall(rig, method, path, body) {
  const res = await fetch(rig + path, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.ok(res.ok, `${method} ${path}: ${res.status}`);
  return res.status === 204 ? null : res.json();
}

const text = async (locator) => ((await locator.count()) ? (await locator.first().textContent()).trim() : "");

test(
  "console through `switchboard console` on the publish-API Lambda: presence, send, receipt",
  { timeout: 180000, skip: !stackBin && "CONSOLE_STACK_BIN is not set (scripts/browser-test.sh sets it)" },
  async () => {
    assert.ok(process.env.DYNAMODB_ENDPOINT, "DYNAMODB_ENDPOINT: the rig's tables are on DynamoDB Local");
    assert.ok(binary, "SWITCHBOARD_BIN must point at the switchboard binary");
    const stack = await startUntilLine(stackBin, ["--secret", SECRET], { DYNAMODB_ENDPOINT: process.env.DYNAMODB_ENDPOINT }, /^\{.*\}$/);
    const { api, rig } = JSON.parse(stack.match[0]);
    let consoleChild;
    let chromium;
    try {
      const started = await startUntilLine(binary, ["console", "--api", api, "--listen", "127.0.0.1:0"], {}, /^console: (http:\/\/\S+)$/);
      consoleChild = started.child;
      const consoleUrl = started.match[1];
      chromium = await startBrowser();
      const page = await chromium.browser.newPage();
      const errors = [];
      page.on("pageerror", (error) => errors.push(String(error)));
      page.on("console", (message) => {
        if (message.type() !== "error") return;
        // Push is off on the rig: the key's 404 is how the page learns it (the contract).
        const url = message.location()?.url || "";
        if (message.text().startsWith("Failed to load resource") && url.endsWith("/v1/push/vapid-public-key")) return;
        errors.push(`${message.text()} (${url})`);
      });

      try {
        await steps(page, consoleUrl, rig);
      } catch (failure) {
        const alerts = await page.getByRole("alert").allTextContents().catch(() => []);
        failure.message += ` (page ${page.url()}, alerts ${JSON.stringify(alerts)})`;
        throw failure;
      }
      assert.deepEqual(errors, []);
    } finally {
      await chromium?.close();
      consoleChild?.kill("SIGTERM");
      stack.child.kill("SIGTERM");
    }
  },
);

/** Sign-in, overview, presence and send, as an operator does them. */
async function steps(page, consoleUrl, rig) {
  // Sign in as a global admin (admin from the single key source).
  await page.goto(consoleUrl);
  assert.equal(await page.title(), "Switchboard console");
  await page.getByLabel("Admin token").fill(mint("ops", "console", ["admin"]));
  await page.getByRole("button", { name: "Sign in" }).click();
  await until("signed in", async () => (await text(page.getByTestId("signed-in"))).includes("console@ops"));
  assert.match(await text(page.getByTestId("signed-in")), /global admin/);

  // Two connections of acme, written to the roster as $connect writes them.
  const { connectionId: alice } = await rigCall(rig, "POST", "/_rig/connections", { tenant: "acme", user: "alice" });
  const { connectionId: bob } = await rigCall(rig, "POST", "/_rig/connections", { tenant: "acme", user: "bob" });

  // Overview: the DynamoDB roster cannot list tenants without a scan (`listed:
  // "configured"`), so the admin watches acme by name.
  await page.getByLabel("Watch tenant").fill("acme");
  await page.getByRole("button", { name: "Watch" }).click();
  await until("overview: 2 connections of acme", async () => (await text(page.getByTestId("connections-acme"))) === "2");
  assert.equal(await text(page.getByTestId("users-acme")), "2");

  // Presence of acme: 2, then 1 once bob's connection is gone.
  await page.getByRole("navigation", { name: "Views" }).getByRole("link", { name: "Presence" }).click();
  await page.getByLabel("Tenant", { exact: true }).fill("acme");
  await page.getByLabel("Tenant", { exact: true }).press("Enter");
  await until("presence: 2 connections", async () => (await text(page.getByTestId("presence-connections"))) === "2");
  assert.equal(await text(page.getByTestId("presence-users")), "2");
  const rows = page.getByRole("table", { name: "Connections" }).getByRole("row");
  await until("2 connection rows", async () => (await rows.count()) === 3);
  await page.getByLabel("User", { exact: true }).fill("alice");
  await page.getByRole("button", { name: "Look up" }).click();
  await until("alice online", async () => (await text(page.getByTestId("user-presence"))) === "alice: online, 1 connection");

  await rigCall(rig, "DELETE", `/_rig/connections/acme/${encodeURIComponent(bob)}`);
  await until("presence: 1 connection", async () => (await text(page.getByTestId("presence-connections"))) === "1");
  assert.equal(await text(page.getByTestId("presence-users")), "1");

  // Send to alice: accepted by the API, fanned out by the publisher, receipt final.
  await page.getByRole("navigation", { name: "Views" }).getByRole("link", { name: "Send" }).click();
  const form = page.getByRole("form", { name: "Send a message" });
  await form.getByLabel("Target type").selectOption("users");
  await form.getByLabel("Tenant", { exact: true }).fill("acme");
  await form.getByLabel("Users", { exact: true }).fill("alice");
  await form.getByLabel("Data (JSON)").fill('{"hello": "from the console on AWS"}');
  await form.getByLabel("Message id").fill("console-aws-1");
  await form.getByRole("button", { name: "Send", exact: true }).click();
  await until("accepted", async () => (await text(page.getByTestId("send-result"))) === "Accepted: console-aws-1");
  await page.getByTestId("receipt-final").waitFor({ timeout: WAIT_MS });
  assert.equal(await text(page.getByTestId("receipt-status")), "delivered");
  assert.equal(await text(page.getByTestId("receipt-progress")), "delivered 1/1");

  // The fake @connections endpoint got the frame, for alice's connection only.
  const posts = await rigCall(rig, "GET", "/_rig/posts");
  assert.deepEqual(
    posts.map((p) => [p.connectionId, p.data.id, p.data.data]),
    [[alice, "console-aws-1", { hello: "from the console on AWS" }]],
  );
}
