import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { load, settle } from "./load.mjs";

const { poll } = await load("src/poll.ts");

test("poll runs now, then every interval after each run, never two at once, until stop()", async (t) => {
  mock.timers.enable({ apis: ["setTimeout"] });
  t.after(() => mock.timers.reset());
  let runs = 0;
  let running = 0;
  let overlap = false;
  let release;
  const p = poll(async () => {
    runs += 1;
    running += 1;
    overlap ||= running > 1;
    await new Promise((resolve) => (release = resolve));
    running -= 1;
  }, 2_000);
  await settle();
  assert.equal(runs, 1);
  mock.timers.tick(10_000); // a slow run: no timer is pending, nothing starts
  await settle();
  assert.equal(runs, 1);
  release();
  await settle();
  mock.timers.tick(1_999);
  await settle();
  assert.equal(runs, 1, "the interval counts from the end of the run");
  mock.timers.tick(1);
  await settle();
  assert.equal(runs, 2);
  release();
  await settle();
  p.stop();
  mock.timers.tick(10_000);
  await settle();
  assert.equal(runs, 2, "nothing after stop()");
  assert.equal(overlap, false);
});

test("a failing run does not end the poll, and alive() turns false on stop", async (t) => {
  mock.timers.enable({ apis: ["setTimeout"] });
  t.after(() => mock.timers.reset());
  let runs = 0;
  let lastAlive;
  const p = poll(async (alive) => {
    runs += 1;
    lastAlive = alive;
    throw new Error("API down");
  }, 1_000);
  await settle();
  mock.timers.tick(1_000);
  await settle();
  assert.equal(runs, 2);
  assert.equal(lastAlive(), true);
  p.stop();
  assert.equal(lastAlive(), false);
});

test("now() during a run waits for it, then runs once more at once", async (t) => {
  mock.timers.enable({ apis: ["setTimeout"] });
  t.after(() => mock.timers.reset());
  let runs = 0;
  let running = 0;
  let overlap = false;
  const releases = [];
  const p = poll(async () => {
    runs += 1;
    running += 1;
    overlap ||= running > 1;
    await new Promise((resolve) => releases.push(resolve));
    running -= 1;
  }, 2_000);
  await settle();
  p.now();
  p.now();
  await settle();
  assert.equal(runs, 1, "no second run while one is in flight");
  releases.shift()();
  await settle();
  assert.equal(runs, 2, "the asked-for run follows at once, once");
  releases.shift()();
  await settle();
  p.stop();
  assert.equal(overlap, false);
});
