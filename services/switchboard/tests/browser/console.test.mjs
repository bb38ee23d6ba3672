// The operator console (/console) in headless Chromium against `serve` (issue 26): signing in
// with a pasted admin token and with the dev path; live connection counts on Overview and
// Presence (2 within 5 s, then 1 after a socket closes); a `users` message sent from the Send
// form followed to `delivered 1/1` and received by the socket, then in Usage's table and
// chart; dead letters listed, filtered, shown, redriven one and all (and a watched tenant on
// a DynamoDB roster); a tenant-scoped admin seeing only its tenant and no broadcast; a
// publisher token refused; a 401 mid-session back to sign-in. Every page's JavaScript errors
// (CSP violations included) are collected and must be none.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, metricsUrl, publish, startBrowser, startServer } from "./server.mjs";
import {
  SECRET, api, emptyDynamo, failedLoad, hs256, issuer, issuersFile, now, openConsole, openSocket,
  options, setField, showsText, signIn, until, view, watchedPage,
} from "./console-helpers.mjs";

/** Every test's Chromium (one profile for the file; each test opens its own pages). */
let chromium;
before(async () => {
  chromium = await startBrowser();
});
after(async () => {
  await chromium?.close();
});

/** `serve` with JWT_HS256_SECRET (no dev mode) and `env`; `args` added. */
const hs256Server = (env = {}, args = []) =>
  startServer({ JWT_HS256_SECRET: SECRET, JWT_LEEWAY_SECS: "0", ...env }, "127.0.0.1:0", { dev: false, args });

/** A global admin of the single key source. */
const globalAdmin = () => hs256({ sub: "console", tenant: "ops", roles: ["admin"] });

describe("a server with an HS256 secret", () => {
  let server;
  before(async () => {
    server = await hs256Server();
  });
  after(() => server?.child.kill("SIGTERM"));

  test("sign in with a pasted admin token: who, the views, nothing stored; sign out", { timeout: 30000 }, async () => {
    const { page, errors } = await watchedPage(chromium.browser);
    await openConsole(page, server.base);
    assert.equal(await page.title(), "Switchboard console");
    assert.equal(await page.getByRole("button", { name: "Mint admin token" }).count(), 0, "no dev path without --dev");
    await signIn(page, globalAdmin());
    await showsText(page.getByTestId("signed-in"), "console@ops · global admin");
    const nav = page.getByRole("navigation", { name: "Views" });
    for (const name of ["Overview", "Presence", "Send", "Dead letters", "Usage"]) {
      assert.equal(await nav.getByRole("link", { name, exact: true }).count(), 1, `link ${name}`);
    }
    // Overview is the default view; every view opens without an error.
    await page.getByRole("heading", { level: 2, name: "Overview" }).waitFor();
    await view(page, "Presence");
    await page.getByLabel("Tenant", { exact: true }).waitFor();
    await view(page, "Send");
    await page.getByRole("form", { name: "Send a message" }).waitFor();
    await view(page, "Dead letters");
    await page.getByLabel("Tenant filter", { exact: true }).waitFor();
    await view(page, "Usage");
    await page.getByLabel("Unit", { exact: true }).waitFor();
    await page.getByLabel("Range", { exact: true }).waitFor();
    // The token lives in memory only.
    const stored = await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]);
    assert.deepEqual(stored, [0, 0, ""], "nothing in localStorage, sessionStorage or cookies");
    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.getByLabel("Admin token", { exact: true }).waitFor();
    assert.equal(await page.getByTestId("signed-in").count(), 0);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test("two sockets of acme: Overview and Presence show 2 within 5 s, then 1 after one closes", { timeout: 40000 }, async () => {
    const admin = globalAdmin();
    const overview = await watchedPage(chromium.browser);
    const presence = await watchedPage(chromium.browser);
    const sockets = [];
    try {
      for (const { page } of [overview, presence]) {
        await openConsole(page, server.base);
        await signIn(page, admin);
      }
      await view(presence.page, "Presence");
      const tenant = presence.page.getByLabel("Tenant", { exact: true });
      await setField(tenant, "acme");
      await tenant.press("Enter");

      for (const user of ["alice", "bob"]) {
        sockets.push(await openSocket(server.base, hs256({ sub: user, tenant: "acme", roles: [] })));
      }
      // Both pages, all at once: each within 5 s of the sockets being open.
      const counts = (n) => Promise.all([
        showsText(overview.page.getByTestId("connections-acme"), n),
        showsText(overview.page.getByTestId("users-acme"), n),
        showsText(presence.page.getByTestId("presence-connections"), n),
        showsText(presence.page.getByTestId("presence-users"), n),
      ]);
      const connections = presence.page.getByRole("table", { name: "Connections" });
      await Promise.all([
        counts("2"),
        ...["alice", "bob"].map((user) => connections.getByRole("row").filter({ hasText: user }).first().waitFor({ timeout: 5000 })),
      ]);

      await sockets.pop().close(); // bob
      await counts("1");

      // A user's connections.
      const lookup = async (user) => {
        await presence.page.getByLabel("User", { exact: true }).fill(user);
        await presence.page.getByRole("button", { name: "Look up", exact: true }).click();
      };
      await lookup("alice");
      await showsText(presence.page.getByTestId("user-presence"), /^\s*alice: online, 1 connection/);
      await lookup("bob");
      await showsText(presence.page.getByTestId("user-presence"), "bob: offline");
      assert.deepEqual([...overview.errors, ...presence.errors], []);
    } finally {
      for (const socket of sockets) await socket.close();
      await overview.page.close();
      await presence.page.close();
    }
  });

  test("a users message sent from the form reaches delivered 1/1, final, and the socket", { timeout: 30000 }, async () => {
    const admin = globalAdmin();
    const socket = await openSocket(server.base, hs256({ sub: "carol", tenant: "beta", roles: [] }));
    const { page, errors } = await watchedPage(chromium.browser);
    try {
      await openConsole(page, server.base);
      await signIn(page, admin);
      await view(page, "Send");
      const form = page.getByRole("form", { name: "Send a message" });
      await form.getByLabel("Target type", { exact: true }).selectOption("users");
      assert.equal(await form.getByLabel("Tenant", { exact: true }).inputValue(), "ops", "prefilled with the admin's tenant");
      await form.getByLabel("Tenant", { exact: true }).fill("beta");
      await form.getByLabel("Users", { exact: true }).fill("carol");
      const data = form.getByLabel("Data (JSON)", { exact: true });
      const send = form.getByRole("button", { name: "Send", exact: true });
      // Invalid JSON is refused as you type.
      const dataError = async () => ((await page.getByTestId("data-error").textContent()) ?? "").trim();
      await data.fill('{"hello": ');
      await until("a message in data-error", dataError, 5000);
      assert.equal(await send.isDisabled(), true, "Send disabled while the data is not JSON");
      await data.fill('{"hello":"from the console","n":1}');
      await until("data-error cleared", async () => (await dataError()) === "", 5000);
      assert.equal(await send.isEnabled(), true, "Send enabled again");
      await form.getByRole("button", { name: "Format JSON", exact: true }).click();
      const formatted = await data.inputValue();
      assert.ok(formatted.includes("\n"), `formatted: ${formatted}`);
      assert.deepEqual(JSON.parse(formatted), { hello: "from the console", n: 1 });
      await form.getByLabel("Message id", { exact: true }).fill("console-1");
      assert.equal(await page.getByLabel("Listen on this token", { exact: true }).isChecked(), false, "listen is off by default");
      await send.click();

      await showsText(page.getByTestId("send-result"), "Accepted: console-1", 10000);
      await showsText(page.getByTestId("receipt-progress"), "delivered 1/1", 10000);
      await page.getByTestId("receipt-final").waitFor({ timeout: 10000 });
      await showsText(page.getByTestId("receipt-status"), "delivered");
      await until("the socket's frame", () => socket.frames.find((f) => f.id === "console-1"));
      const frame = socket.frames.find((f) => f.id === "console-1");
      assert.deepEqual(frame.data, { hello: "from the console", n: 1 });
      const receipt = await api(server.base, admin, "/v1/messages/console-1?tenant=beta");
      assert.equal(receipt.status, 200);
      assert.equal(receipt.body.status, "delivered");
      assert.equal(receipt.body.final, true);

      // Listen on this token: the console's own socket (the client library, bundled) gets a
      // message to its user, and is gone when unchecked.
      const listen = page.getByLabel("Listen on this token", { exact: true });
      const online = async () => (await api(server.base, admin, "/v1/tenants/ops/users/console/presence")).body.online;
      await listen.check();
      await until("the console's socket in presence", online, 5000);
      const target = { type: "users", tenant: "ops", users: ["console"] };
      assert.equal(await publish(server.base, admin, { id: "to-console", target, data: { back: true } }), 202);
      await page.getByTestId("live-messages").getByText("to-console").waitFor({ timeout: 5000 });
      await listen.uncheck();
      await until("the console's socket closed", async () => !(await online()), 5000);

      // The publish is in the usage: Usage's table and chart; Overview's chart offers `*`.
      await view(page, "Usage");
      await page.getByLabel("Usage tenant", { exact: true }).selectOption("beta");
      await page.getByLabel("Unit", { exact: true }).selectOption("minute");
      await page.getByRole("table", { name: "Usage buckets" }).getByRole("row").nth(1).waitFor({ timeout: 5000 });
      await page.locator(".uplot").first().waitFor();
      await view(page, "Overview");
      assert.ok((await options(page.getByLabel("Chart tenant", { exact: true }))).includes("*"), "broadcasts in the chart");
      await page.locator(".uplot").first().waitFor();
      assert.deepEqual(errors, []);
    } finally {
      await socket.close();
      await page.close();
    }
  });

  test("a publisher token is refused at sign-in", { timeout: 20000 }, async () => {
    const publisher = hs256({ sub: "backend", tenant: "acme", roles: ["publisher"] });
    const { status, body } = await api(server.base, publisher, "/v1/tenants");
    assert.equal(status, 403);
    const { page, errors } = await watchedPage(chromium.browser, [failedLoad(403)]);
    await openConsole(page, server.base);
    await page.getByLabel("Admin token", { exact: true }).fill(publisher);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    const alert = page.getByRole("alert").filter({ hasText: "not an admin token" });
    await alert.waitFor({ timeout: 5000 });
    assert.ok((await alert.textContent()).includes(body.message), `the API's message "${body.message}" shown`);
    assert.equal(await page.getByTestId("signed-in").count(), 0);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test("a 401 mid-session (the token expires) goes back to sign-in", { timeout: 30000 }, async () => {
    const { page, errors } = await watchedPage(chromium.browser, [failedLoad(401)]);
    await openConsole(page, server.base);
    // Valid for 5 s (JWT_LEEWAY_SECS=0): Overview's refresh every 2 s then gets 401.
    const token = hs256({ sub: "console", tenant: "ops", roles: ["admin"], exp: now() + 5 });
    await signIn(page, token);
    await page.getByLabel("Admin token", { exact: true }).waitFor({ timeout: 12000 });
    assert.equal(await page.getByTestId("signed-in").count(), 0);
    const { status, body } = await api(server.base, token, "/v1/tenants");
    assert.equal(status, 401);
    await page.getByRole("alert").filter({ hasText: body.message }).waitFor();
    assert.deepEqual(errors, []);
    await page.close();
  });
});

test("dev mode: Mint admin token signs in as console@ops", { timeout: 30000 }, async () => {
  const { child, base } = await startServer();
  const { page, errors } = await watchedPage(chromium.browser);
  try {
    await openConsole(page, base);
    assert.equal(await page.getByLabel("Dev tenant", { exact: true }).inputValue(), "ops");
    assert.equal(await page.getByLabel("Dev user", { exact: true }).inputValue(), "console");
    await page.getByRole("button", { name: "Mint admin token", exact: true }).click();
    await showsText(page.getByTestId("signed-in"), "console@ops · global admin");
    await page.getByRole("heading", { level: 2, name: "Overview" }).waitFor();
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    child.kill("SIGTERM");
  }
});

test("dead letters: listed, filtered, body shown, one redriven, then all", { timeout: 40000 }, async () => {
  // A DynamoDB roster nobody answers (as tests/e2e/harness.rs's DeadRoster): each message
  // dead-letters on its first receive. Then a stand-in DynamoDB that finds nobody is started
  // on that port, so a redriven message ends (unmatched) instead of dying again.
  const port = await freePort();
  const { child, base } = await hs256Server(
    {
      DYNAMODB_ENDPOINT: `http://127.0.0.1:${port}`, ROSTER_TABLE: "unreachable", RECEIPT_TTL_SECS: "0",
      AWS_ACCESS_KEY_ID: "local", AWS_SECRET_ACCESS_KEY: "local", AWS_REGION: "us-east-1", AWS_MAX_ATTEMPTS: "1",
      SCAN_SEGMENTS: "1", RUST_LOG: "error", // its unreachable stores warn at every call
    },
    ["--roster", "dynamodb", "--visibility-timeout", "10ms", "--max-receives", "1"],
  );
  const { page, errors } = await watchedPage(chromium.browser);
  let dynamo;
  try {
    const admin = globalAdmin();
    for (const [id, tenant] of [["dl-1", "acme"], ["dl-2", "globex"]]) {
      const status = await publish(base, admin, { id, target: { type: "users", tenant, users: ["bob"] }, data: { id } });
      assert.equal(status, 202);
    }
    const listed = async () => (await api(base, admin, "/v1/dead-letters")).body.items;
    const letters = await until("two dead letters", async () => ((await listed()).length === 2 ? listed() : null));
    const letterOf = (id) => letters.find((letter) => JSON.parse(letter.body).id === id);
    const [one, two] = [letterOf("dl-1"), letterOf("dl-2")];
    assert.ok(one && two, JSON.stringify(letters));
    // From here on the roster answers (finding nobody): a redriven message ends, unmatched.
    dynamo = await emptyDynamo(port);
    const processed = () => metric(base, 'switchboard_messages_total{outcome="delivered"}');
    const before = await processed();

    await openConsole(page, base);
    await signIn(page, admin);
    // A DynamoDB roster lists no tenants (that would be a scan): a global admin watches one.
    await page.getByLabel("Watch tenant", { exact: true }).fill("acme");
    await page.getByRole("button", { name: "Watch", exact: true }).click();
    await showsText(page.getByTestId("connections-acme"), "0");
    await view(page, "Dead letters");
    const table = page.getByRole("table", { name: "Dead letters" });
    const row = (letter) => table.getByRole("row").filter({ hasText: letter.id });
    await row(one).waitFor();
    await row(two).waitFor();
    await row(one).filter({ hasText: "acme" }).waitFor();

    // The tenant filter.
    await page.getByLabel("Tenant filter", { exact: true }).fill("globex");
    await page.getByRole("button", { name: "Apply", exact: true }).click();
    await row(one).waitFor({ state: "detached" });
    await row(two).waitFor();
    await page.getByLabel("Tenant filter", { exact: true }).fill("");
    await page.getByRole("button", { name: "Apply", exact: true }).click();
    await row(one).waitFor();

    await row(one).getByRole("button", { name: "Show body", exact: true }).click();
    await page.locator("pre", { hasText: "dl-1" }).waitFor();

    // Redrive one: it runs again and leaves the list; the other stays.
    await row(one).getByRole("button", { name: "Redrive", exact: true }).click();
    await redrive(page, one.id);
    await row(one).waitFor({ state: "detached", timeout: 5000 });
    await until("the redriven message processed", async () => (await processed()) > before);
    assert.deepEqual((await listed()).map((letter) => letter.id), [two.id], "only the other letter is left");
    await row(two).waitFor();

    // Redrive all: the last one.
    await page.getByRole("button", { name: "Redrive all", exact: true }).click();
    await redrive(page);
    await page.getByText("No dead letters").waitFor({ timeout: 5000 });
    await until("both redriven messages processed", async () => (await processed()) > before + 1);
    assert.deepEqual(await listed(), []);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    child.kill("SIGTERM");
    await dynamo?.close();
  }
});

/** Confirms the open redrive dialog (naming `id` when one letter) and waits for `Redriven: 1`. */
async function redrive(page, id) {
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  if (id) assert.ok((await dialog.textContent()).includes(id), `the dialog names ${id}`);
  await dialog.getByRole("button", { name: "Confirm redrive", exact: true }).click();
  await showsText(page.getByTestId("redrive-result"), "Redriven: 1");
  await dialog.waitFor({ state: "hidden" });
}

/** A sample of the server's /metrics (0 when absent). */
async function metric(base, name) {
  const text = await (await fetch(metricsUrl(base))).text();
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.split(" ")[1]) : 0;
}

test("a tenant-scoped admin sees only its tenant and no broadcast; a global admin sees both", { timeout: 40000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-console-issuers-"));
  const ops = issuer("https://ops.example", "ops-1", { tenants: "*", globalAdmin: true, allowSharedTenants: true });
  const acmeIdp = issuer("https://acme.example", "acme-1", { tenants: ["acme"] });
  const { child, base } = await startServer(
    { JWT_ISSUERS_FILE: issuersFile(dir, [ops, acmeIdp]), JWT_LEEWAY_SECS: "0" },
    "127.0.0.1:0",
    { dev: false },
  );
  const sockets = [];
  const tenantAdmin = await watchedPage(chromium.browser);
  const global = await watchedPage(chromium.browser);
  try {
    sockets.push(await openSocket(base, acmeIdp.token({ sub: "alice", tenant: "acme", roles: [] })));
    sockets.push(await openSocket(base, ops.token({ sub: "gus", tenant: "globex", roles: [] })));

    const page = tenantAdmin.page;
    await openConsole(page, base);
    await signIn(page, acmeIdp.token({ sub: "alice", tenant: "acme", roles: ["admin"] }));
    await showsText(page.getByTestId("signed-in"), "alice@acme · admin of acme");
    await showsText(page.getByTestId("connections-acme"), "1");
    assert.deepEqual(
      await page.getByTestId(/^connections-/).evaluateAll((all) => all.map((e) => e.dataset.testid)),
      ["connections-acme"],
      "only its own tenant in Overview",
    );
    assert.deepEqual(await options(page.getByLabel("Chart tenant", { exact: true })), ["acme"], "no broadcasts in its chart");
    await view(page, "Presence");
    const tenant = page.getByLabel("Tenant", { exact: true });
    const fixed = (await tenant.evaluate((e) => e.tagName)) === "SELECT"
      ? JSON.stringify(await options(tenant)) === '["acme"]' || !(await tenant.isEditable())
      : !(await tenant.isEditable());
    assert.ok(fixed, "the tenant is fixed in Presence");
    assert.equal(await tenant.inputValue(), "acme");
    await showsText(page.getByTestId("presence-connections"), "1");
    await view(page, "Send");
    const type = page.getByRole("form", { name: "Send a message" }).getByLabel("Target type", { exact: true });
    const types = await options(type);
    assert.ok(types.includes("users") && types.includes("tenant") && types.includes("connections"), types.join());
    assert.ok(!types.includes("broadcast"), `no broadcast for a tenant admin: ${types}`);

    const other = global.page;
    await openConsole(other, base);
    await signIn(other, ops.token({ sub: "root", tenant: "ops", roles: ["admin"] }));
    await showsText(other.getByTestId("signed-in"), "root@ops · global admin");
    await showsText(other.getByTestId("connections-acme"), "1");
    await showsText(other.getByTestId("connections-globex"), "1");
    await view(other, "Send");
    const all = await options(other.getByRole("form", { name: "Send a message" }).getByLabel("Target type", { exact: true }));
    assert.ok(all.includes("broadcast"), `a global admin may broadcast: ${all}`);
    assert.deepEqual([...tenantAdmin.errors, ...global.errors], []);
  } finally {
    for (const socket of sockets) await socket.close();
    await tenantAdmin.page.close();
    await global.page.close();
    child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
});
