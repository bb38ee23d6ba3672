// Compile-time checks (tsc --noEmit -p test): the browser's WebSocket fits the `WebSocket`
// option, and events and their payloads are typed.
import { createClient, type ClientMessage, type ClientState } from "../src/index.js";

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
client.close();
