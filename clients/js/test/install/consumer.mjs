// What a front-end developer writes after `npm install <path>/clients/js ws`: copied into
// a scratch project by install.sh and run there, so `switchboard-client` resolves as an
// installed package. Connects to `switchboard serve`, publishes one message over HTTP to
// itself, exits 0 when it arrives (1 on any failure or after 20 s).
//
//   node consumer.mjs <ws url> <http base> <token>
import { createClient } from "switchboard-client";
import WebSocket from "ws";

const [url, base, token] = process.argv.slice(2);
const timer = setTimeout(() => fail("no message within 20 s"), 20000);
const id = `install-${process.pid}-${Date.now()}`;

function fail(why) {
  console.error(`consumer: ${why}`);
  process.exit(1);
}

const client = createClient({ url, token: () => token, WebSocket });
client.on("state", async (state) => {
  if (state !== "open") return;
  const res = await fetch(`${base}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({
      id,
      target: { type: "users", tenant: "demo", users: ["alice"] },
      data: { hello: "installed" },
    }),
  }).catch((err) => fail(`publish: ${err.message}`));
  if (res.status !== 202) fail(`publish answered ${res.status}: ${await res.text()}`);
});
client.on("message", (message) => {
  if (message.id !== id) return;
  if (message.data?.hello !== "installed") fail(`unexpected data ${JSON.stringify(message.data)}`);
  console.log(`consumer: received ${message.id} through switchboard-client and ws`);
  clearTimeout(timer);
  client.close();
  process.exit(0);
});
