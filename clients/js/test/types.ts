// Compile-time checks (tsc --noEmit -p test): the browser's WebSocket fits the `WebSocket`
// option, and events and their payloads are typed.
import { createClient, PushError, type ClientMessage, type ClientState } from "../src/index.js";

const client = createClient({
  url: "wss://example.com/main",
  token: async () => "a.b.c",
  transport: "query",
  debug: (message: string) => console.debug(message),
  WebSocket: WebSocket,
  keepAliveMs: 60_000,
  maxBackoffMs: 10_000,
});
client.on("message", ({ id, data, cursor }: ClientMessage) => void [id, data, cursor]);
client.on("state", (state: ClientState) => void state);
const off: () => void = client.on("gap", () => {});
off();
// @ts-expect-error: not an event
client.on("nope", () => {});
// @ts-expect-error: a state listener gets a state, not a message
client.on("state", (m: ClientMessage) => void m);
// @ts-expect-error: the token is a function
createClient({ url: "wss://example.com/main", token: "a.b.c" });
// The browser's ServiceWorkerRegistration fits client.push.subscribe; it resolves to the id.
async function push(): Promise<string> {
  const registration = await navigator.serviceWorker.register("/service-worker.js");
  const id: string = await client.push.subscribe(registration, { apiUrl: "https://api.example.com" });
  const ended: boolean = await client.push.unsubscribe(registration);
  void ended;
  // @ts-expect-error: the key is a base64url string
  await client.push.subscribe(registration, { vapidPublicKey: new Uint8Array(65) });
  return id;
}
void push().catch((e: unknown) => e instanceof PushError && e.code === "not_configured");
createClient({ url: "wss://example.com/main", token: () => "a.b.c", apiUrl: "https://api.example.com", fetch });
client.close();
