// Hang detection for one running QEMU: QMP must answer query-status at a steady interval,
// and (opt-in) the guest must pass its liveness probe after a boot grace period.
import type { QmpClient } from '../qemu/qmp.js';
import type { Probe } from './liveness.js';

export interface HealthTiming {
  qmpIntervalMs: number;
  qmpTimeoutMs: number;
  livenessGraceMs: number;
  livenessIntervalMs: number;
  livenessTimeoutMs: number;
  livenessMisses: number;
}

export const DEFAULT_HEALTH: HealthTiming = {
  qmpIntervalMs: 5000,
  qmpTimeoutMs: 3000,
  livenessGraceMs: 60_000,
  livenessIntervalMs: 10_000,
  livenessTimeoutMs: 5000,
  livenessMisses: 3,
};

export class HealthWatch {
  /** Pending timeouts only: each one removes itself when it fires. */
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private misses = 0;

  constructor(
    private readonly qmp: QmpClient,
    private readonly probe: Probe | null,
    private readonly t: HealthTiming,
    private readonly onHung: (kind: 'qemu-hung' | 'guest-hung', why: string) => void,
    /** The guest is paused on purpose: no liveness expected. */
    private readonly paused: () => boolean,
  ) {}

  start(): void {
    this.loop(this.t.qmpIntervalMs, async () => {
      try {
        await this.qmp.execute('query-status', undefined, this.t.qmpTimeoutMs);
      } catch (err) {
        if (!this.qmp.closed) this.fire('qemu-hung', (err as Error).message);
      }
    });
    if (this.probe) {
      const probe = this.probe;
      const begin = setTimeout(() => {
        this.timers.delete(begin);
        this.loop(this.t.livenessIntervalMs, async () => {
          if (this.paused()) return;
          if (await probe()) this.misses = 0;
          else if (++this.misses >= this.t.livenessMisses) {
            this.fire('guest-hung', `no answer to ${this.t.livenessMisses} liveness probes in a row`);
          }
        });
      }, this.t.livenessGraceMs);
      begin.unref();
      this.timers.add(begin);
    }
  }

  stop(): void {
    this.stopped = true;
    this.timers.forEach(clearTimeout);
    this.timers.clear();
  }

  private fire(kind: 'qemu-hung' | 'guest-hung', why: string): void {
    if (this.stopped) return;
    this.stop();
    this.onHung(kind, why);
  }

  /** Runs fn every intervalMs, never overlapping itself; unref'd so it never keeps a process up. */
  private loop(intervalMs: number, fn: () => Promise<void>): void {
    const schedule = () => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (this.stopped) return;
        void fn().then(() => {
          if (!this.stopped) schedule();
        });
      }, intervalMs);
      t.unref();
      this.timers.add(t);
    };
    schedule();
  }
}
