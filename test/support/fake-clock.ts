// A clock whose time moves only when the test says so. Timers fire in time order, and the
// promise chains they start settle before the next one fires, so a test of minutes of
// backoffs and health checks runs in milliseconds and always the same way.
import type { Clock } from '../../electron/core/clock';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }

  /** Moves time to `to`, firing every timer due on the way, each after the work before it settled. */
  async advanceTo(to: number): Promise<void> {
    await settle();
    for (;;) {
      const next = this.timers.filter((x) => x.at <= to).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.timers = this.timers.filter((x) => x !== next);
      this.t = Math.max(this.t, next.at);
      next.fn();
      // timer work here is promise chains (no I/O): a few macrotask turns drain them
      await settle(3);
    }
    this.t = Math.max(this.t, to);
    await settle();
  }
}

/** Lets every pending promise chain run to its end (they never wait on real time here). */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
