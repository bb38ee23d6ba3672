/** Usage buckets (docs/design.md: Usage) as chart series: empty buckets filled with 0. */

export type Unit = "minute" | "hour" | "day";

export const UNIT_SECONDS: Record<Unit, number> = { minute: 60, hour: 3_600, day: 86_400 };

export type Range = "hour" | "day" | "month";

export const RANGES: { value: Range; label: string; seconds: number }[] = [
  { value: "hour", label: "last hour", seconds: 3_600 },
  { value: "day", label: "last day", seconds: 86_400 },
  { value: "month", label: "last 30 days", seconds: 30 * 86_400 },
];

/** Most points one chart draws; a finer unit over a longer range is refused. */
export const MAX_POINTS = 10_000;

export interface Bucket {
  start: string;
  [count: string]: number | string;
}

export interface UsageAnswer {
  tenant: string;
  unit: Unit;
  buckets: Bucket[];
}

/** `[from, to)` in whole units (UTC), covering the last `seconds` up to the current unit. */
export function usageWindow(seconds: number, unit: Unit, now: Date): { from: Date; to: Date } {
  const step = UNIT_SECONDS[unit];
  const nowSecs = Math.floor(now.getTime() / 1000);
  const to = (Math.floor(nowSecs / step) + 1) * step;
  const from = to - Math.max(1, Math.ceil(seconds / step)) * step;
  return { from: new Date(from * 1000), to: new Date(to * 1000) };
}

/**
 * uPlot's data: `[xs (unix seconds), ...one array per field]`, one point per unit from
 * `from` to before `to`; a unit without a bucket (the API answers only non-empty ones)
 * is 0.
 */
export function toSeries(
  buckets: Bucket[],
  fields: string[],
  window: { from: Date; to: Date },
  unit: Unit,
): number[][] {
  const step = UNIT_SECONDS[unit];
  const from = Math.floor(window.from.getTime() / 1000);
  const to = Math.floor(window.to.getTime() / 1000);
  const count = Math.min(MAX_POINTS, Math.max(0, Math.ceil((to - from) / step)));
  const xs = Array.from({ length: count }, (_, i) => from + i * step);
  const series = fields.map(() => new Array<number>(count).fill(0));
  for (const bucket of buckets) {
    const at = Math.floor(Date.parse(bucket.start) / 1000);
    const index = Math.floor((at - from) / step);
    if (!Number.isFinite(index) || index < 0 || index >= count) continue;
    fields.forEach((field, f) => {
      const value = bucket[field];
      if (typeof value === "number") series[f]![index]! += value;
    });
  }
  return [xs, ...series];
}

/** How many points `range` at `unit` would draw. */
export function pointCount(seconds: number, unit: Unit): number {
  return Math.ceil(seconds / UNIT_SECONDS[unit]);
}
