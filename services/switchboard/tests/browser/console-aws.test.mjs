// The operator console against the AWS path (issue 26), in the system's headless Chromium:
// `switchboard console --api <api>` in front of the console_stack rig
// (services/lambdas/examples/console_stack: the real publish-api and publisher Lambda
// binaries under an emulated Runtime API, behind a fake HTTP API, tables on DynamoDB
// Local). The rig writes roster connections as $connect would and keeps what its fake
// @connections endpoint receives. Signs in with an HS256 admin token, watches acme on
// Overview (the DynamoDB roster lists no tenants: `listed: "configured"`), sees Presence
// count 2 then 1, sends a `users` message to `delivered 1/1` and final, and checks the post
// reached alice's connection. Needs CONSOLE_STACK_BIN, DYNAMODB_ENDPOINT and SWITCHBOARD_BIN
// (scripts/browser-test.sh sets all three).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { binary, startBrowser } from "./server.mjs";
import { SECRET, failedLoad, hs256, openConsole, showsText, signIn, until, view, watchedPage } from "./console-helpers.mjs";

const stackBin = process.env.CONSOLE_STACK_BIN;
/** Long enough for the API's and the publisher's first DynamoDB calls on a loaded machine. */
const WAIT_MS = 20000;

/** Spawns `command` and resolves { child, match } once a stdout line matches `pattern`;
 *  its stderr is kept in `log` (the tail is shown when the test fails). */
function startUntilLine(command, args, env, pattern, log) {
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH, RUST_LOG: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  createInterface({ input: child.stderr }).on("line", (line) => {
    log.push(line);
    if (log.length > 200) log.shift();
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
    child.on("exit", (code) => reject(new Error(`${command} exited ${code}: ${log.slice(-20).join("\n")}`)));
  });
}

/** A call to the rig's control endpoint; its JSON answer (null for 204). */
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
  "the console through `switchboard console` on the publish-API Lambda: presence, send, receipt",
  { timeout: 180000, skip: !stackBin && "CONSOLE_STACK_BIN is not set (scripts/browser-test.sh sets it)" },
  async () => {
    assert.ok(process.env.DYNAMODB_ENDPOINT, "DYNAMODB_ENDPOINT: the rig's tables are on DynamoDB Local");
    assert.ok(binary, "SWITCHBOARD_BIN must point at the switchboard binary");
    const log = [];
    const stack = await startUntilLine(stackBin, ["--secret", SECRET], { DYNAMODB_ENDPOINT: process.env.DYNAMODB_ENDPOINT }, /^\{.*\}$/, log);
    const { api, rig } = JSON.parse(stack.match[0]);
    let consoleChild;
    let chromium;
    try {
      const started = await startUntilLine(binary, ["console", "--api", api, "--listen", "127.0.0.1:0"], {}, /^console: (http:\/\/\S+)\/console$/, log);
      consoleChild = started.child;
      chromium = await startBrowser();
      // 404s are expected: push is off on the rig (the VAPID key's 404 says so), and the
      // browser asks for /favicon.ico, which the console does not serve.
      const { page, errors } = await watchedPage(chromium.browser, [failedLoad(404)]);
      try {
        await steps(page, started.match[1], rig);
      } catch (failure) {
        const alerts = await page.getByRole("alert").allTextContents().catch(() => []);
        failure.message += `\n(page ${page.url()}, alerts ${JSON.stringify(alerts)})\nlogs:\n${log.slice(-30).join("\n")}`;
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

/** Sign-in, Overview, Presence and Send, as an operator goes through them. */
async function steps(page, base, rig) {
  // A global admin: `admin` from the single key source.
  await openConsole(page, base);
  assert.equal(await page.title(), "Switchboard console");
  await signIn(page, hs256({ sub: "console", tenant: "ops", roles: ["admin"] }));
  await showsText(page.getByTestId("signed-in"), /console@ops · global admin/);

  // Two connections of acme, written to the roster table as $connect writes them.
  const { connectionId: alice } = await rigCall(rig, "POST", "/_rig/connections", { tenant: "acme", user: "alice" });
  const { connectionId: bob } = await rigCall(rig, "POST", "/_rig/connections", { tenant: "acme", user: "bob" });

  // Overview: the DynamoDB roster cannot list its tenants without a scan, so the admin
  // watches acme by name.
  await page.getByLabel("Watch tenant", { exact: true }).fill("acme");
  await page.getByRole("button", { name: "Watch", exact: true }).click();
  await showsText(page.getByTestId("connections-acme"), "2", WAIT_MS);
  await showsText(page.getByTestId("users-acme"), "2", WAIT_MS);

  // Presence of acme: 2, then 1 once bob's connection is gone.
  await view(page, "Presence");
  const tenant = page.getByLabel("Tenant", { exact: true });
  await tenant.fill("acme");
  await tenant.press("Enter");
  await showsText(page.getByTestId("presence-connections"), "2", WAIT_MS);
  await showsText(page.getByTestId("presence-users"), "2", WAIT_MS);
  const rows = page.getByRole("table", { name: "Connections" }).getByRole("row");
  await until("two connection rows and the header", async () => (await rows.count()) === 3, WAIT_MS);
  await page.getByLabel("User", { exact: true }).fill("alice");
  await page.getByRole("button", { name: "Look up", exact: true }).click();
  await showsText(page.getByTestId("user-presence"), "alice: online, 1 connection", WAIT_MS);

  await rigCall(rig, "DELETE", `/_rig/connections/acme/${encodeURIComponent(bob)}`);
  await showsText(page.getByTestId("presence-connections"), "1", WAIT_MS);
  await showsText(page.getByTestId("presence-users"), "1", WAIT_MS);

  // Send to alice: accepted by the API Lambda, fanned out by the publisher Lambda.
  await view(page, "Send");
  const form = page.getByRole("form", { name: "Send a message" });
  await form.getByLabel("Target type", { exact: true }).selectOption("users");
  await form.getByLabel("Tenant", { exact: true }).fill("acme");
  await form.getByLabel("Users", { exact: true }).fill("alice");
  await form.getByLabel("Data (JSON)", { exact: true }).fill('{"hello": "from the console on AWS"}');
  await form.getByLabel("Message id", { exact: true }).fill("console-aws-1");
  await form.getByRole("button", { name: "Send", exact: true }).click();
  await showsText(page.getByTestId("send-result"), "Accepted: console-aws-1", WAIT_MS);
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
