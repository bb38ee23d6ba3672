/**
 * Presence: a tenant's summary (`presence/summary`) and its connections, one page at a time
 * (`presence?limit=&next=`), both refreshed every 2 s; a user's connections on demand.
 */
import { useEffect, useState } from "preact/hooks";
import { seg, withQuery } from "../api.ts";
import { poll } from "../poll.ts";
import { countText, type TenantCount } from "../session.ts";
import type { ViewProps } from "../routes.ts";
import { Alert, Empty, Loading, messageOf, Pager } from "./states.tsx";

export const PRESENCE_MS = 2_000;
export const PAGE_SIZE = 50;
/** A typed tenant is applied this long after the last keystroke. */
export const TYPING_MS = 500;

interface Page {
  connections: { connectionId: string; user: string; connectedAt: string }[];
  next: string | null;
}

interface UserPresence {
  user: string;
  online: boolean;
  connections: { connectionId: string; connectedAt: string }[];
}

/** `alice: online, 2 connections` / `alice: offline`. */
export function userPresenceText(presence: UserPresence): string {
  const n = presence.connections.length;
  if (!presence.online && n === 0) return `${presence.user}: offline`;
  return `${presence.user}: online, ${n} connection${n === 1 ? "" : "s"}`;
}

export function Presence({ session, tenants }: ViewProps) {
  const { api, caller } = session;
  const [tenantText, setTenantText] = useState(caller.tenant);
  const [tenant, setTenant] = useState(caller.tenant);
  /** `next` tokens of the pages before the one shown (the first page: none). */
  const [pages, setPages] = useState<(string | undefined)[]>([undefined]);
  const [summary, setSummary] = useState<TenantCount | undefined>();
  const [page, setPage] = useState<Page | undefined>();
  const [error, setError] = useState<string | undefined>();
  const cursor = pages[pages.length - 1];

  function choose(text: string): void {
    const chosen = text.trim();
    if (chosen !== "" && chosen !== tenant) {
      setTenant(chosen);
      setPages([undefined]);
    }
  }

  // a typed tenant applies once typing pauses (or at once with Enter)
  useEffect(() => {
    const timer = setTimeout(() => choose(tenantText), TYPING_MS);
    return () => clearTimeout(timer);
  }, [tenantText]);

  useEffect(() => {
    setSummary(undefined);
    setPage(undefined);
    const refresh = poll(async (alive) => {
      try {
        const [s, p] = await Promise.all([
          api<TenantCount>("GET", `/v1/tenants/${seg(tenant)}/presence/summary`),
          api<Page>("GET", withQuery(`/v1/tenants/${seg(tenant)}/presence`, { limit: PAGE_SIZE, next: cursor })),
        ]);
        if (!alive()) return;
        setSummary(s);
        setPage(p);
        setError(undefined);
      } catch (failure) {
        if (alive()) setError(messageOf(failure));
      }
    }, PRESENCE_MS);
    return () => refresh.stop();
  }, [api, tenant, cursor]);

  return (
    <section aria-labelledby="presence-title">
      <h2 id="presence-title">Presence</h2>
      <form
        class="row"
        onSubmit={(event) => {
          event.preventDefault();
          choose(tenantText);
        }}
      >
        <span>
          <label for="presence-tenant">Tenant</label>
          <input
            id="presence-tenant"
            list="presence-tenants"
            value={tenantText}
            readOnly={!caller.globalAdmin}
            onInput={(e) => setTenantText(e.currentTarget.value)}
          />
          <datalist id="presence-tenants">
            {tenants.map((t) => (
              <option value={t} key={t} />
            ))}
          </datalist>
        </span>
      </form>
      <Alert message={error} quiet />
      {summary && (
        <p class="summary">
          <span data-testid="presence-connections">{countText(summary.connections, summary.complete)}</span>{" "}
          connections of <span data-testid="presence-users">{countText(summary.users, summary.complete)}</span>{" "}
          users in {summary.tenant}
        </p>
      )}
      {page === undefined && !error && <Loading what="connections" />}
      {page !== undefined && page.connections.length === 0 && (
        <Empty>No live connections in {tenant}{pages.length > 1 ? " on this page" : ""}.</Empty>
      )}
      {page !== undefined && page.connections.length > 0 && (
        <table>
          <caption>Connections</caption>
          <thead>
            <tr>
              <th scope="col">Connection id</th>
              <th scope="col">User</th>
              <th scope="col">Connected at</th>
            </tr>
          </thead>
          <tbody>
            {page.connections.map((c) => (
              <tr key={c.connectionId}>
                <td class="mono">{c.connectionId}</td>
                <td>{c.user}</td>
                <td class="nowrap">{c.connectedAt}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager pages={pages} next={page?.next} onPages={setPages} />
      <UserLookup api={api} tenant={tenant} />
    </section>
  );
}

function UserLookup({ api, tenant }: { api: ViewProps["session"]["api"]; tenant: string }) {
  const [user, setUser] = useState("");
  const [result, setResult] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  async function lookUp(): Promise<void> {
    const name = user.trim();
    if (name === "") return;
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    try {
      const answer = await api<UserPresence>("GET", `/v1/tenants/${seg(tenant)}/users/${seg(name)}/presence`);
      setResult(userPresenceText({ ...answer, user: answer.user ?? name }));
    } catch (failure) {
      setError(messageOf(failure));
    }
    setBusy(false);
  }

  return (
    <form
      class="panel"
      onSubmit={(event) => {
        event.preventDefault();
        void lookUp();
      }}
    >
      <h3>A user's connections</h3>
      <div class="row">
        <span>
          <label for="lookup-user">User</label>
          <input id="lookup-user" value={user} onInput={(e) => setUser(e.currentTarget.value)} />
        </span>
        <button type="submit" disabled={busy}>
          Look up
        </button>
      </div>
      <Alert message={error} />
      {result && <p data-testid="user-presence">{result}</p>}
    </form>
  );
}
