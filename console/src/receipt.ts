/** A message's receipt (docs/design.md: Receipts) as the Send view shows and follows it. */
import { pollUntil } from "./poll.ts";

export interface Receipt {
  id: string;
  tenant: string | null;
  status: string;
  matched: number;
  delivered: number;
  gone: number;
  failed: number;
  pushed: number;
  final?: boolean;
}

/** Statuses after which nothing changes (a server without `final` is judged by these). */
const FINAL_STATUSES = new Set(["delivered", "unmatched", "dead", "expired"]);

export function isFinal(receipt: Receipt): boolean {
  return receipt.final ?? FINAL_STATUSES.has(receipt.status);
}

/** `delivered D/M`, then `gone G, failed F, pushed P` for those that are not zero. */
export function progressText(receipt: Receipt): string {
  const extra = (["gone", "failed", "pushed"] as const)
    .filter((key) => (receipt[key] ?? 0) > 0)
    .map((key) => `${key} ${receipt[key]}`);
  const head = `delivered ${receipt.delivered ?? 0}/${receipt.matched ?? 0}`;
  return extra.length === 0 ? head : `${head}, ${extra.join(", ")}`;
}

/** How often a receipt is read while it is not final, and for how long at most. */
export const RECEIPT_INTERVAL_MS = 1_000;
export const RECEIPT_MAX_MS = 10 * 60_000;

/**
 * Reads the receipt now and every `RECEIPT_INTERVAL_MS` until it is final: each read goes to
 * `onReceipt`; stops on an error (`onError`), after `RECEIPT_MAX_MS` (`onGiveUp`) or `stop()`.
 */
export function followReceipt(
  read: () => Promise<Receipt>,
  handlers: {
    onReceipt: (receipt: Receipt) => void;
    onError: (error: unknown) => void;
    onGiveUp: () => void;
  },
): { stop(): void } {
  let stopped = false;
  const follow = pollUntil(
    async () => {
      const receipt = await read();
      if (stopped) return true;
      handlers.onReceipt(receipt);
      return isFinal(receipt);
    },
    {
      intervalMs: RECEIPT_INTERVAL_MS,
      maxMs: RECEIPT_MAX_MS,
      onError: handlers.onError,
      onGiveUp: handlers.onGiveUp,
    },
  );
  return {
    stop() {
      stopped = true;
      follow.stop();
    },
  };
}
