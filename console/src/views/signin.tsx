/** Sign-in: paste an admin token, or (serve --dev) mint one. The token stays in memory. */
import { useState } from "preact/hooks";
import { messageOf, Alert } from "./states.tsx";
import { refusal, signIn, type ConsoleConfig, type Session } from "../session.ts";
import { TIMEOUT_MS } from "../api.ts";

interface Props {
  config: ConsoleConfig;
  /** Why the last session ended (a 401), shown as the alert. */
  notice: string | undefined;
  onSession: (session: Session) => void;
  onUnauthorized: (message: string) => void;
}

async function mint(tenant: string, user: string): Promise<string> {
  const response = await fetch("/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tenant, user, roles: ["admin"] }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const body = (await response.json().catch(() => ({}))) as { token?: string; message?: string };
  if (!response.ok || typeof body.token !== "string") {
    throw new Error(`Could not mint a dev token: ${body.message ?? `HTTP ${response.status}`}`);
  }
  return body.token;
}

export function SignIn({ config, notice, onSession, onUnauthorized }: Props) {
  const [token, setToken] = useState("");
  const [tenant, setTenant] = useState("ops");
  const [user, setUser] = useState("console");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(notice);

  async function enter(candidate: string): Promise<void> {
    setBusy(true);
    setError(undefined);
    try {
      onSession(await signIn(candidate, onUnauthorized));
    } catch (failure) {
      setError(refusal(failure));
      setBusy(false);
    }
  }

  async function mintAndEnter(): Promise<void> {
    setBusy(true);
    setError(undefined);
    let minted: string;
    try {
      minted = await mint(tenant.trim(), user.trim());
    } catch (failure) {
      setError(messageOf(failure));
      setBusy(false);
      return;
    }
    await enter(minted);
  }

  return (
    <section class="signin" aria-labelledby="signin-title">
      <h2 id="signin-title">Sign in</h2>
      <Alert message={error} />
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (token.trim() !== "") void enter(token.trim());
        }}
      >
        <label for="token">Admin token</label>
        <textarea
          id="token"
          rows={4}
          spellcheck={false}
          autocomplete="off"
          value={token}
          onInput={(event) => setToken(event.currentTarget.value)}
          onKeyDown={(event) => {
            if (event.key === "Enter" && !event.shiftKey) {
              event.preventDefault();
              event.currentTarget.form?.requestSubmit();
            }
          }}
        />
        <p class="hint">A JWT with role admin. Kept in this page's memory only: reloading signs out.</p>
        <button type="submit" disabled={busy || token.trim() === ""}>
          Sign in
        </button>
      </form>
      {config.devToken && (
        <form
          class="dev"
          onSubmit={(event) => {
            event.preventDefault();
            void mintAndEnter();
          }}
        >
          <h3>Dev mode</h3>
          <div class="row">
            <span>
              <label for="dev-tenant">Dev tenant</label>
              <input id="dev-tenant" value={tenant} onInput={(e) => setTenant(e.currentTarget.value)} />
            </span>
            <span>
              <label for="dev-user">Dev user</label>
              <input id="dev-user" value={user} onInput={(e) => setUser(e.currentTarget.value)} />
            </span>
            <button type="submit" disabled={busy}>
              Mint admin token
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
