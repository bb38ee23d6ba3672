/**
 * Timers of the views: `poll` runs a task now and again `intervalMs` after each run settles
 * (never two runs at once, however slow the API); `stop()` ends it, also mid-run (the
 * run's result is then ignored by the caller's `alive` check). Each run's own wait is
 * bounded by the API's timeout (api.ts), so a poll never hangs.
 */
export interface Poll {
  stop(): void;
  /** Run the task now (e.g. after a change) instead of at the next tick. */
  now(): void;
}

/** `task` gets `alive()`: false once stopped, so it can drop a late answer. */
export function poll(task: (alive: () => boolean) => Promise<unknown>, intervalMs: number): Poll {
  let stopped = false;
  let running = false;
  let again = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const alive = (): boolean => !stopped;

  async function run(): Promise<void> {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    clearTimeout(timer);
    timer = undefined;
    running = true;
    try {
      await task(alive);
    } catch {
      // the task shows its own errors; polling goes on
    }
    running = false;
    if (stopped) return;
    if (again) {
      again = false;
      void run();
      return;
    }
    timer = setTimeout(() => void run(), intervalMs);
  }

  void run();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
    now() {
      void run();
    },
  };
}

/**
 * Runs `task` every `intervalMs` until it answers `true` (done), it throws (the error goes
 * to `onError`), `maxMs` has passed since the start (`onGiveUp`), or `stop()`.
 */
export function pollUntil(
  task: () => Promise<boolean>,
  options: {
    intervalMs: number;
    maxMs: number;
    onError: (error: unknown) => void;
    onGiveUp: () => void;
  },
): { stop(): void } {
  const started = Date.now();
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  async function run(): Promise<void> {
    let done: boolean;
    try {
      done = await task();
    } catch (error) {
      if (!stopped) options.onError(error);
      return;
    }
    if (done || stopped) return;
    if (Date.now() - started + options.intervalMs > options.maxMs) {
      options.onGiveUp();
      return;
    }
    timer = setTimeout(() => void run(), options.intervalMs);
  }

  void run();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
