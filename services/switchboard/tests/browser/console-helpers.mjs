// Helpers of the operator console's browser tests (console.test.mjs): tokens signed in the
// test (HS256 with a known secret, ES256 keys of issuers written to JWKS files), sockets
// opened with `ws`, a page that records its JavaScript errors, signing in through the
// console's own form, and a stand-in DynamoDB that answers every roster read with nothing.
import { createHmac, generateKeyPairSync, sign } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import WebSocket from "ws";

/** The `JWT_HS256_SECRET` of the servers these tests start. */
export const SECRET = "a-console-browser-test-secret-of-32-bytes+";

/** Now, in seconds since the epoch (a token's `exp`). */
export const now = () => Math.floor(Date.now() / 1000);

const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");

/** An HS256 JWT signed with SECRET; `exp` 10 minutes from now unless `claims` has one. */
export function hs256(claims) {
  const head = `${part({ alg: "HS256", typ: "JWT" })}.${part({ exp: now() + 600, ...claims })}`;
  return `${head}.${createHmac("sha256", SECRET).update(head).digest("base64url")}`;
}

/** An identity provider of `JWT_ISSUERS_FILE`: a fresh P-256 key under `kid`. */
export function issuer(name, kid, entry) {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" };
  return {
    name,
    /** Its entry in the issuers file, its JWKS written into `dir`. */
    entry(dir) {
      const file = join(dir, `${kid}.json`);
      writeFileSync(file, JSON.stringify({ keys: [jwk] }));
      return { issuer: name, jwksFile: file, ...entry };
    },
    /** An ES256 JWT of this issuer; `exp` 10 minutes from now unless `claims` has one. */
    token(claims) {
      const head = `${part({ alg: "ES256", typ: "JWT", kid })}.${part({ iss: name, exp: now() + 600, ...claims })}`;
      const signature = sign("sha256", Buffer.from(head), { key: privateKey, dsaEncoding: "ieee-p1363" });
      return `${head}.${signature.toString("base64url")}`;
    },
  };
}

/** Writes `issuers` (from `issuer()`) as an issuers file in `dir`; returns its path. */
export function issuersFile(dir, issuers) {
  const file = join(dir, "issuers.json");
  writeFileSync(file, JSON.stringify({ issuers: issuers.map((i) => i.entry(dir)) }));
  return file;
}

/** Polls `check` until it is truthy (resolves to its value); fails naming `what`. */
export async function until(what, check, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A socket of the server at `base` (stage `main`) as `token`, open; its frames in `frames`. */
export function openSocket(base, token) {
  const socket = new WebSocket(`${base.replace(/^http/, "ws")}/main?token=${token}`);
  const frames = [];
  socket.on("message", (data) => frames.push(JSON.parse(String(data))));
  return new Promise((resolve, reject) => {
    socket.once("open", () => resolve({
      frames,
      /** Closes the socket and waits until it is closed. */
      close: () => new Promise((done) => {
        if (socket.readyState === WebSocket.CLOSED) return done();
        socket.once("close", done);
        socket.close();
      }),
    }));
    socket.once("error", reject);
    socket.once("unexpected-response", (_, res) => reject(new Error(`handshake: ${res.statusCode}`)));
  });
}

/** JSON of `GET|POST base+path` as `token`: { status, body }. */
export async function api(base, token, path, { method = "GET", body } = {}) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body && JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** The browser's console line (text, then the resource's URL) for a fetch answered with
 *  `status`, of a URL matching `url` when given. */
export const failedLoad = (status, url = /./) =>
  new RegExp(`Failed to load resource: the server responded with a status of ${status}\\b.* \\S*${url.source}`);

/** The console's probe of `GET /v1/push/vapid-public-key`: 404 means push is off. */
export const pushOff = failedLoad(404, /\/v1\/push\/vapid-public-key$/);

/** A new page of `browser` whose JavaScript errors (uncaught, or console errors, CSP
 *  violations included) are collected in `errors`, except console errors matching one of
 *  `allowed` (e.g. the browser's own line for an expected 401 or 403 answer) or `pushOff`.
 *  A console error is matched as its text, a space and the URL it names. */
export async function watchedPage(browser, allowed = []) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const line = `${message.text()} ${message.location().url}`;
    if (![...allowed, pushOff].some((pattern) => pattern.test(line))) errors.push(`console: ${line}`);
  });
  return { page, errors };
}

/** Opens the console of the server at `base` (its sign-in screen). */
export async function openConsole(page, base) {
  await page.goto(base + "/console");
  await page.getByRole("heading", { level: 1, name: "Switchboard console" }).waitFor();
}

/** Signs in with a pasted `token`; resolves once the signed-in line shows. */
export async function signIn(page, token) {
  await page.getByLabel("Admin token", { exact: true }).fill(token);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByTestId("signed-in").waitFor({ timeout: 10000 });
}

/** Opens one of the views through the nav's link. */
export async function view(page, name) {
  await page.getByRole("navigation", { name: "Views" }).getByRole("link", { name, exact: true }).click();
}

/** Sets a labelled field that may be an input or a select. */
export async function setField(locator, value) {
  const tag = await locator.evaluate((element) => element.tagName);
  if (tag === "SELECT") await locator.selectOption(value);
  else await locator.fill(value);
}

/** The option values of a select, once it shows. */
export async function options(select) {
  await select.waitFor();
  return select.locator("option").evaluateAll((all) => all.map((o) => o.value));
}

/** Waits until `locator`'s whole text is `text` (trimmed), within `ms`. */
export async function showsText(locator, text, ms = 5000) {
  const pattern = text instanceof RegExp ? text : new RegExp(`^\\s*${text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}\\s*$`);
  await locator.filter({ hasText: pattern }).waitFor({ timeout: ms });
}

/** A stand-in DynamoDB on 127.0.0.1:`port`: every `Query`/`Scan` finds nothing, every other
 *  call succeeds empty. */
export function emptyDynamo(port) {
  const server = createServer((req, res) => {
    const operation = String(req.headers["x-amz-target"] || "").split(".").pop();
    req.resume();
    req.on("end", () => {
      const body = operation === "Query" || operation === "Scan" ? { Items: [], Count: 0, ScannedCount: 0 } : {};
      res.writeHead(200, { "content-type": "application/x-amz-json-1.0" });
      res.end(JSON.stringify(body));
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve({ close: () => new Promise((r) => server.close(r)) }));
  });
}
