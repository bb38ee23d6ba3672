import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { load, settle } from "./load.mjs";

const receipts = await load("src/receipt.ts");

const base = { id: "m1", tenant: "acme", status: "delivering", matched: 0, delivered: 0, gone: 0, failed: 0, pushed: 0 };

test("progress is delivered/matched, plus gone, failed and pushed when not zero", () => {
  assert.equal(receipts.progressText({ ...base, matched: 1, delivered: 1 }), "delivered 1/1");
  assert.equal(receipts.progressText({ ...base, matched: 0 }), "delivered 0/0");
  assert.equal(
    receipts.progressText({ ...base, matched: 5, delivered: 2, gone: 1, failed: 2, pushed: 3 }),
    "delivered 2/5, gone 1, failed 2, pushed 3",
  );
  assert.equal(receipts.progressText({ ...base, matched: 3, delivered: 2, failed: 1 }), "delivered 2/3, failed 1");
});

test("final: the receipt's own flag, else the final statuses", () => {
  assert.equal(receipts.isFinal({ ...base, status: "partial", final: true }), true);
  assert.equal(receipts.isFinal({ ...base, status: "delivered", final: false }), false);
  for (const status of ["delivered", "unmatched", "dead", "expired"]) {
    assert.equal(receipts.isFinal({ ...base, status }), true, status);
  }
  for (const status of ["queued", "delivering", "partial"]) {
    assert.equal(receipts.isFinal({ ...base, status }), false, status);
  }
});

test("following a receipt reads it every second and stops once it is final", async (t) => {
  mock.timers.enable({ apis: ["setTimeout", "Date"] });
  t.after(() => mock.timers.reset());
  const answers = [
    { ...base, status: "queued", final: false },
    { ...base, status: "delivering", matched: 1, final: false },
    { ...base, status: "delivered", matched: 1, delivered: 1, final: true },
  ];
  let reads = 0;
  const seen = [];
  receipts.followReceipt(async () => answers[Math.min(reads++, answers.length - 1)], {
    onReceipt: (r) => seen.push(r.status),
    onError: (e) => assert.fail(String(e)),
    onGiveUp: () => assert.fail("gave up"),
  });
  await settle();
  assert.equal(reads, 1, "read at once");
  for (let i = 0; i < 10; i++) {
    mock.timers.tick(receipts.RECEIPT_INTERVAL_MS);
    await settle();
  }
  assert.equal(reads, 3, "no read after the final one");
  assert.deepEqual(seen, ["queued", "delivering", "delivered"]);
});

test("following stops on an error, and on stop()", async (t) => {
  mock.timers.enable({ apis: ["setTimeout", "Date"] });
  t.after(() => mock.timers.reset());
  const errors = [];
  let reads = 0;
  receipts.followReceipt(
    async () => {
      reads += 1;
      throw new Error("not_found");
    },
    { onReceipt: () => {}, onError: (e) => errors.push(e.message), onGiveUp: () => {} },
  );
  await settle();
  mock.timers.tick(5_000);
  await settle();
  assert.equal(reads, 1);
  assert.deepEqual(errors, ["not_found"]);

  let later = 0;
  const follow = receipts.followReceipt(async () => ({ ...base, final: false, n: later++ }), {
    onReceipt: () => {},
    onError: () => {},
    onGiveUp: () => {},
  });
  await settle();
  follow.stop();
  mock.timers.tick(5_000);
  await settle();
  assert.equal(later, 1, "nothing read after stop()");
});

test("following gives up after its longest wait", async (t) => {
  mock.timers.enable({ apis: ["setTimeout", "Date"] });
  t.after(() => mock.timers.reset());
  let gaveUp = false;
  let reads = 0;
  receipts.followReceipt(async () => (reads++, { ...base, final: false }), {
    onReceipt: () => {},
    onError: () => {},
    onGiveUp: () => (gaveUp = true),
  });
  await settle();
  for (let i = 0; i < receipts.RECEIPT_MAX_MS / receipts.RECEIPT_INTERVAL_MS + 5; i++) {
    mock.timers.tick(receipts.RECEIPT_INTERVAL_MS);
    await settle();
  }
  assert.equal(gaveUp, true);
  assert.ok(reads <= receipts.RECEIPT_MAX_MS / receipts.RECEIPT_INTERVAL_MS + 1, `reads ${reads}`);
});
