// Time as the supervisor sees it: the wall clock and timers. Injected, so that tests drive
// backoffs, health checks and restart timers on a fake clock, in milliseconds of real time.

export interface Clock {
  now(): number;
  /** Runs fn after ms; returns a cancel function. Never keeps the process alive by itself. */
  after(ms: number, fn: () => void): () => void;
  /** Resolves after ms. */
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
