import { test } from "node:test";
import assert from "node:assert/strict";
import { load } from "./load.mjs";

const usage = await load("src/usage.ts");

test("the window covers the range in whole units, up to the current one", () => {
  const now = new Date("2026-03-01T10:17:42Z");
  const minute = usage.usageWindow(3_600, "minute", now);
  assert.equal(minute.from.toISOString(), "2026-03-01T09:18:00.000Z");
  assert.equal(minute.to.toISOString(), "2026-03-01T10:18:00.000Z");
  const day = usage.usageWindow(30 * 86_400, "day", now);
  assert.equal(day.to.toISOString(), "2026-03-02T00:00:00.000Z");
  assert.equal(day.from.toISOString(), "2026-01-31T00:00:00.000Z");
});

test("buckets become series with one point per unit, empty minutes 0", () => {
  const window = { from: new Date("2026-03-01T10:00:00Z"), to: new Date("2026-03-01T10:05:00Z") };
  const buckets = [
    { start: "2026-03-01T10:01:00Z", publishesAccepted: 3, delivered: 2 },
    { start: "2026-03-01T10:04:00Z", publishesAccepted: 1, publishesRefused: 4 },
    { start: "2026-03-01T09:00:00Z", publishesAccepted: 99 }, // outside: ignored
  ];
  const [xs, accepted, delivered, refused] = usage.toSeries(
    buckets,
    ["publishesAccepted", "delivered", "publishesRefused"],
    window,
    "minute",
  );
  const t0 = Date.parse("2026-03-01T10:00:00Z") / 1000;
  assert.deepEqual(xs, [t0, t0 + 60, t0 + 120, t0 + 180, t0 + 240]);
  assert.deepEqual(accepted, [0, 3, 0, 0, 1]);
  assert.deepEqual(delivered, [0, 2, 0, 0, 0]);
  assert.deepEqual(refused, [0, 0, 0, 0, 4]);
});

test("no buckets: all zeros; hour buckets land on their hour", () => {
  const window = { from: new Date("2026-03-01T00:00:00Z"), to: new Date("2026-03-01T03:00:00Z") };
  assert.deepEqual(usage.toSeries([], ["delivered"], window, "hour")[1], [0, 0, 0]);
  assert.deepEqual(
    usage.toSeries([{ start: "2026-03-01T02:00:00Z", delivered: 7 }], ["delivered"], window, "hour")[1],
    [0, 0, 7],
  );
});

test("a minute chart of 30 days is too many points; an hour one is not", () => {
  assert.ok(usage.pointCount(30 * 86_400, "minute") > usage.MAX_POINTS);
  assert.ok(usage.pointCount(30 * 86_400, "hour") <= usage.MAX_POINTS);
});
