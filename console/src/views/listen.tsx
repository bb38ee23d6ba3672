/**
 * "Listen on this token": a socket opened with the client library as the signed-in token
 * (off by default, so the console never adds to the counts it shows), listing the last
 * `KEPT` messages it receives.
 */
import { useEffect, useState } from "preact/hooks";
import { createClient, type ClientState } from "../../../clients/js/src/index.ts";
import { websocketUrl, type ConsoleConfig, type Session } from "../session.ts";

export const KEPT = 50;

interface Received {
  id: string;
  data: string;
  at: string;
}

export function Listen({ session, config }: { session: Session; config: ConsoleConfig }) {
  const [on, setOn] = useState(false);
  const [state, setState] = useState<ClientState | undefined>();
  const [messages, setMessages] = useState<Received[]>([]);

  useEffect(() => {
    if (!on) return undefined;
    const client = createClient({ url: websocketUrl(config, location), token: () => session.token });
    const offState = client.on("state", setState);
    const offMessage = client.on("message", ({ id, data }) => {
      const entry = { id, data: JSON.stringify(data), at: new Date().toLocaleTimeString() };
      setMessages((list) => [entry, ...list].slice(0, KEPT));
    });
    return () => {
      offState();
      offMessage();
      client.close();
      setState(undefined);
    };
  }, [on, session, config]);

  return (
    <div class="panel">
      <h3>Live messages</h3>
      <input id="listen" type="checkbox" checked={on} onChange={(e) => setOn(e.currentTarget.checked)} />{" "}
      <label for="listen" class="inline">
        Listen on this token
      </label>
      {state && <span class="hint"> · socket {state}</span>}
      <ul data-testid="live-messages" class="messages">
        {messages.map((m, i) => (
          <li key={`${m.id}-${i}`}>
            <span class="mono">{m.id}</span> {m.at}: <code>{m.data}</code>
          </li>
        ))}
      </ul>
      {on && messages.length === 0 && <p class="state empty">No messages received yet on this token.</p>}
    </div>
  );
}
