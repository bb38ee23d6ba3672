/**
 * Overview: live connections and users per tenant (`GET /v1/tenants`, plus
 * `presence/summary` of each watched tenant) every 2 s, and the chart tenant's last 60
 * minutes of accepted, delivered and refused publishes (usage API) every 30 s.
 */
import { useEffect, useState } from "preact/hooks";
import { seg, withQuery } from "../api.ts";
import { poll } from "../poll.ts";
import { countText, type TenantCount, type TenantsAnswer } from "../session.ts";
import { toSeries, usageWindow, type UsageAnswer } from "../usage.ts";
import type { ViewProps } from "../routes.ts";
import { Chart } from "./chart.tsx";
import { Alert, Empty, Loading, messageOf, TenantSelect } from "./states.tsx";

export const OVERVIEW_MS = 2_000;
export const CHART_MS = 30_000;

const SERIES = [
  { field: "publishesAccepted", label: "accepted", color: "#2563eb" },
  { field: "delivered", label: "delivered", color: "#16a34a" },
  { field: "publishesRefused", label: "errors (refused)", color: "#dc2626" },
];

interface Props extends ViewProps {
  watched: string[];
  onWatch: (tenant: string) => void;
}

export function Overview({ session, tenants, watched, onWatch }: Props) {
  const { api, caller } = session;
  const [rows, setRows] = useState<TenantCount[] | undefined>();
  const [listed, setListed] = useState(session.first.listed);
  const [truncated, setTruncated] = useState(session.first.truncated === true);
  const [error, setError] = useState<string | undefined>();
  const [watchText, setWatchText] = useState("");
  const [watchError, setWatchError] = useState<string | undefined>();

  useEffect(() => {
    const refresh = poll(async (alive) => {
      try {
        const answer = await api<TenantsAnswer>("GET", "/v1/tenants");
        const known = new Set(answer.tenants.map((t) => t.tenant));
        const extra = await Promise.all(
          watched
            .filter((t) => !known.has(t))
            .map((t) => api<TenantCount>("GET", `/v1/tenants/${seg(t)}/presence/summary`)),
        );
        if (!alive()) return;
        setRows([...answer.tenants, ...extra].sort((a, b) => a.tenant.localeCompare(b.tenant)));
        setListed(answer.listed);
        setTruncated(answer.truncated === true);
        setError(undefined);
      } catch (failure) {
        if (alive()) setError(messageOf(failure));
      }
    }, OVERVIEW_MS);
    return () => refresh.stop();
  }, [api, watched.join(",")]);

  async function watch(): Promise<void> {
    const tenant = watchText.trim();
    if (tenant === "") return;
    setWatchError(undefined);
    try {
      await api("GET", `/v1/tenants/${seg(tenant)}/presence/summary`);
      onWatch(tenant);
      setWatchText("");
    } catch (failure) {
      setWatchError(messageOf(failure));
    }
  }

  const chartTenants = [...new Set([...tenants, ...(rows ?? []).map((r) => r.tenant)])].sort();
  return (
    <section aria-labelledby="overview-title">
      <h2 id="overview-title">Overview</h2>
      <Alert message={error} quiet />
      {caller.globalAdmin && listed === "configured" && (
        <form
          class="row"
          onSubmit={(event) => {
            event.preventDefault();
            void watch();
          }}
        >
          <span>
            <label for="watch-tenant">Watch tenant</label>
            <input id="watch-tenant" value={watchText} onInput={(e) => setWatchText(e.currentTarget.value)} />
          </span>
          <button type="submit">Watch</button>
          <p class="hint">
            This deployment lists only its configured tenants (listing live ones would scan the roster): add
            any tenant to watch it.
          </p>
        </form>
      )}
      <Alert message={watchError} />
      {rows === undefined && !error && <Loading what="tenants" />}
      {rows !== undefined && rows.length === 0 && (
        <Empty>No tenants with live connections yet: open a socket, or watch a tenant.</Empty>
      )}
      {rows !== undefined && rows.length > 0 && (
        <table>
          <caption>Tenants</caption>
          <thead>
            <tr>
              <th scope="col">Tenant</th>
              <th scope="col" class="num">Connections</th>
              <th scope="col" class="num">Users</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.tenant}>
                <th scope="row">{row.tenant}</th>
                <td class="num" data-testid={`connections-${row.tenant}`}>
                  {countText(row.connections, row.complete)}
                </td>
                <td class="num" data-testid={`users-${row.tenant}`}>
                  {countText(row.users, row.complete)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {truncated && <p class="hint">Only the first 100 tenants are shown.</p>}
      <TenantChart api={api} tenants={chartTenants} globalAdmin={caller.globalAdmin} initial={caller.tenant} />
    </section>
  );
}

function TenantChart(props: { api: ViewProps["session"]["api"]; tenants: string[]; globalAdmin: boolean; initial: string }) {
  const { api } = props;
  const [tenant, setTenant] = useState(props.initial);
  const [data, setData] = useState<number[][] | undefined>();
  const [error, setError] = useState<string | undefined>();

  useEffect(() => {
    setData(undefined);
    const refresh = poll(async (alive) => {
      const window = usageWindow(3_600, "minute", new Date());
      try {
        const path = withQuery(`/v1/tenants/${seg(tenant)}/usage`, {
          from: window.from.toISOString(),
          to: window.to.toISOString(),
          unit: "minute",
        });
        const answer = await api<UsageAnswer>("GET", path);
        if (!alive()) return;
        setData(toSeries(answer.buckets, SERIES.map((s) => s.field), window, "minute"));
        setError(undefined);
      } catch (failure) {
        if (alive()) setError(messageOf(failure));
      }
    }, CHART_MS);
    return () => refresh.stop();
  }, [api, tenant]);

  const options = props.globalAdmin ? [...props.tenants, "*"] : props.tenants;
  return (
    <div class="panel">
      <h3>Publishes per minute, last 60 minutes</h3>
      <TenantSelect id="chart-tenant" label="Chart tenant" value={tenant} tenants={options} onChange={setTenant} />
      <Alert message={error} quiet />
      {data === undefined && !error && <Loading what="usage" />}
      {data !== undefined && data.slice(1).every((s) => s.every((v) => v === 0)) && (
        <Empty>No publishes for {tenant === "*" ? "broadcasts" : tenant} in the last 60 minutes.</Empty>
      )}
      {data !== undefined && <Chart label={`Publishes per minute of ${tenant}`} series={SERIES} data={data} />}
    </div>
  );
}
