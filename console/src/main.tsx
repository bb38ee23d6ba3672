/**
 * The Switchboard operator console: loads `/console/config.json`, signs in (token in memory
 * only), then shows the view the hash names (`#/overview` by default). Any 401 from the API
 * ends the session and shows sign-in with the API's message.
 */
import { render } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { SignIn } from "./views/signin.tsx";
import { Alert, Loading, messageOf } from "./views/states.tsx";
import { Overview } from "./views/overview.tsx";
import { Presence } from "./views/presence.tsx";
import { Send } from "./views/send.tsx";
import { DeadLetters } from "./views/dead-letters.tsx";
import { Usage } from "./views/usage.tsx";
import { callerText, type ConsoleConfig, type Session } from "./session.ts";
import { TIMEOUT_MS } from "./api.ts";
import { routeOf, ROUTES, type Route } from "./routes.ts";

function useRoute(): Route {
  const [route, setRoute] = useState(routeOf(location.hash));
  useEffect(() => {
    const changed = (): void => setRoute(routeOf(location.hash));
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return route;
}

async function loadConfig(): Promise<ConsoleConfig> {
  const response = await fetch("/console/config.json", { signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!response.ok) throw new Error(`/console/config.json answered ${response.status}`);
  return (await response.json()) as ConsoleConfig;
}

function App() {
  const [config, setConfig] = useState<ConsoleConfig | undefined>();
  const [configError, setConfigError] = useState<string | undefined>();
  const [session, setSession] = useState<Session | undefined>();
  const [notice, setNotice] = useState<string | undefined>();
  const [watched, setWatched] = useState<string[]>([]);
  const route = useRoute();

  useEffect(() => {
    loadConfig().then(setConfig, (error) => setConfigError(`Could not load the console's config: ${messageOf(error)}`));
  }, []);

  const onUnauthorized = useCallback((message: string) => {
    setSession(undefined);
    setWatched([]);
    setNotice(`Signed out: the API refused the token (401): ${message}`);
  }, []);

  let body;
  if (configError) body = <Alert message={configError} />;
  else if (!config) body = <Loading what="the console" />;
  else if (!session) {
    body = (
      <SignIn
        config={config}
        notice={notice}
        onUnauthorized={onUnauthorized}
        onSession={(s) => {
          setNotice(undefined);
          setSession(s);
        }}
      />
    );
  } else {
    const tenants = [...new Set([session.caller.tenant, ...session.first.tenants.map((t) => t.tenant), ...watched])]
      .filter((t) => session.caller.globalAdmin || t === session.caller.tenant)
      .sort();
    const props = { session, config, tenants };
    const links = ROUTES.filter((r) => r.path !== "dead-letters" || config.deployment === "serve");
    body = (
      <>
        <div class="bar">
          <span data-testid="signed-in">{callerText(session.caller)}</span>
          <button
            type="button"
            onClick={() => {
              setSession(undefined);
              setWatched([]);
            }}
          >
            Sign out
          </button>
        </div>
        <nav aria-label="Views">
          {links.map((r) => (
            <a href={`#/${r.path}`} aria-current={r.path === route ? "page" : undefined} key={r.path}>
              {r.label}
            </a>
          ))}
        </nav>
        <main>
          {route === "overview" && (
            <Overview {...props} onWatch={(t) => setWatched((w) => (w.includes(t) ? w : [...w, t]))} watched={watched} />
          )}
          {route === "presence" && <Presence {...props} />}
          {route === "send" && <Send {...props} />}
          {route === "dead-letters" && <DeadLetters {...props} />}
          {route === "usage" && <Usage {...props} />}
        </main>
      </>
    );
  }
  return (
    <>
      <header>
        <h1>Switchboard console</h1>
      </header>
      {body}
    </>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
