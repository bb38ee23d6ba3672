/** Usage: a tenant's usage buckets (`GET /v1/tenants/{t}/usage`) by unit and range, charted and listed. */
import { useEffect, useState } from "preact/hooks";
import { seg, withQuery } from "../api.ts";
import type { ViewProps } from "../routes.ts";
import type { TenantsAnswer } from "../session.ts";
import { pointCount, RANGES, toSeries, usageWindow, MAX_POINTS, type Bucket, type Range, type Unit, type UsageAnswer } from "../usage.ts";
import { Chart } from "./chart.tsx";
import { Alert, Empty, Loading, messageOf, TenantSelect } from "./states.tsx";

const SERIES = [
  { field: "publishesAccepted", label: "accepted", color: "#2563eb" },
  { field: "delivered", label: "delivered", color: "#16a34a" },
  { field: "publishesRefused", label: "refused", color: "#dc2626" },
  { field: "gone", label: "gone", color: "#a16207" },
];

const COLUMNS = ["publishesAccepted", "publishesRefused", "matched", "delivered", "gone", "pushed", "bytesSent", "connectionMinutes", "peakConnections"];

export function Usage({ session, tenants }: ViewProps) {
  const { api, caller } = session;
  const [tenant, setTenant] = useState(caller.tenant);
  const [unit, setUnit] = useState<Unit>("minute");
  const [range, setRange] = useState<Range>("hour");
  const [answer, setAnswer] = useState<{ buckets: Bucket[]; data: number[][] } | undefined>();
  const [error, setError] = useState<string | undefined>();
  const seconds = RANGES.find((r) => r.value === range)?.seconds ?? 3_600;
  const tooMany = pointCount(seconds, unit) > MAX_POINTS;
  const [live, setLive] = useState<string[]>([]);

  // the tenants with live connections now (the list at sign-in may be older)
  useEffect(() => {
    let alive = true;
    if (caller.globalAdmin) {
      api<TenantsAnswer>("GET", "/v1/tenants").then(
        (a) => alive && setLive(a.tenants.map((t) => t.tenant)),
        () => {},
      );
    }
    return () => {
      alive = false;
    };
  }, [api, caller.globalAdmin]);

  useEffect(() => {
    let alive = true;
    setAnswer(undefined);
    setError(undefined);
    if (tooMany) return undefined;
    const window = usageWindow(seconds, unit, new Date());
    const path = withQuery(`/v1/tenants/${seg(tenant)}/usage`, {
      from: window.from.toISOString(),
      to: window.to.toISOString(),
      unit,
    });
    api<UsageAnswer>("GET", path).then(
      (a) =>
        alive &&
        setAnswer({ buckets: a.buckets, data: toSeries(a.buckets, SERIES.map((s) => s.field), window, unit) }),
      (failure) => alive && setError(messageOf(failure)),
    );
    return () => {
      alive = false;
    };
  }, [api, tenant, unit, seconds, tooMany]);

  const options = caller.globalAdmin ? [...new Set([...tenants, ...live])].sort().concat("*") : [caller.tenant];
  return (
    <section aria-labelledby="usage-title">
      <h2 id="usage-title">Usage</h2>
      <div class="row">
        <TenantSelect id="usage-tenant" label="Usage tenant" value={tenant} tenants={options} onChange={setTenant} />
        <span>
          <label for="usage-unit">Unit</label>
          <select id="usage-unit" value={unit} onChange={(e) => setUnit(e.currentTarget.value as Unit)}>
            <option value="minute">minute</option>
            <option value="hour">hour</option>
            <option value="day">day</option>
          </select>
        </span>
        <span>
          <label for="usage-range">Range</label>
          <select id="usage-range" value={range} onChange={(e) => setRange(e.currentTarget.value as Range)}>
            {RANGES.map((r) => (
              <option value={r.value} key={r.value}>
                {r.label}
              </option>
            ))}
          </select>
        </span>
      </div>
      {tooMany && <Alert message={`Too many points for one chart: choose a coarser unit than ${unit} for this range.`} />}
      <Alert message={error} />
      {answer === undefined && !error && !tooMany && <Loading what="usage" />}
      {answer !== undefined && (
        <>
          <Chart label={`Usage of ${tenant} per ${unit}`} series={SERIES} data={answer.data} />
          {answer.buckets.length === 0 ? (
            <Empty>No usage recorded for {tenant} in this range.</Empty>
          ) : (
            <div class="scroll">
              <table>
                <caption>Usage buckets</caption>
                <thead>
                  <tr>
                    <th scope="col">Start</th>
                    {COLUMNS.map((c) => (
                      <th scope="col" class="num" key={c}>
                        {c}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {answer.buckets.map((b) => (
                    <tr key={b.start}>
                      <td class="nowrap">{b.start}</td>
                      {COLUMNS.map((c) => (
                        <td class="num" key={c}>
                          {b[c] ?? 0}
                        </td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </section>
  );
}
