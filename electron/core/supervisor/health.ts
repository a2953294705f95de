// Hang detection for one running QEMU: QMP must answer query-status at a steady interval,
// and (opt-in) the guest must pass its liveness probe. A probe's misses count only after its
// first success, or once the VM's start-up window has passed without one (Kubernetes'
// startup-probe semantics): a guest that boots slowly on a loaded host is not killed for it.
import type { Clock } from '../clock.js';
import type { QemuCommands } from '../qemu/commands.js';
import type { Probe } from './liveness.js';

export interface HealthTiming {
  qmpIntervalMs: number;
  qmpTimeoutMs: number;
  livenessIntervalMs: number;
  livenessTimeoutMs: number;
  livenessMisses: number;
}

export const DEFAULT_HEALTH: HealthTiming = {
  qmpIntervalMs: 5000,
  qmpTimeoutMs: 3000,
  livenessIntervalMs: 10_000,
  livenessTimeoutMs: 5000,
  livenessMisses: 3,
};

export type HangKind = 'qemu-hung' | 'guest-hung';

export interface HealthOptions {
  qmp: QemuCommands;
  probe: Probe | null;
  timing: HealthTiming;
  clock: Clock;
  /** When misses start to count even without a first success (start + the VM's start-up window). */
  startupEndsAt: number;
  onHung: (kind: HangKind, why: string) => void;
  /** The probe answered for the first time: from now on its misses count. */
  onFirstAnswer: () => void;
  /** The guest is paused on purpose: no liveness expected. */
  paused: () => boolean;
  /** A snapshot job holds QEMU's main loop: QMP's silence then is no hang. */
  busy?: () => boolean;
}

export class HealthWatch {
  private readonly cancels = new Set<() => void>();
  private stopped = false;
  private misses = 0;
  private succeeded = false;

  constructor(private readonly o: HealthOptions) {}

  start(): void {
    const { qmp, timing } = this.o;
    let answered = qmp.answered;
    this.loop(timing.qmpIntervalMs, async () => {
      if (this.o.busy?.()) return;
      // QEMU answered other commands since the last check (statistics ask every 2 s): it is alive
      if (qmp.answered !== answered) {
        answered = qmp.answered;
        return;
      }
      try {
        await qmp.queryStatus(timing.qmpTimeoutMs);
      } catch (err) {
        if (!qmp.closed && !this.o.busy?.()) this.fire('qemu-hung', (err as Error).message);
      }
      answered = qmp.answered;
    });
    if (this.o.probe) {
      const probe = this.o.probe;
      this.loop(timing.livenessIntervalMs, async () => {
        if (this.o.paused() || this.o.busy?.()) return;
        if (await probe()) {
          if (!this.succeeded && !this.stopped) this.o.onFirstAnswer();
          this.succeeded = true;
          this.misses = 0;
        } else if (this.succeeded || this.o.clock.now() >= this.o.startupEndsAt) {
          if (++this.misses >= timing.livenessMisses) {
            const why = this.succeeded ? 'in a row' : 'after its start-up window without ever answering';
            this.fire('guest-hung', `no answer to ${timing.livenessMisses} liveness probes ${why}`);
          }
        }
      });
    }
  }

  stop(): void {
    this.stopped = true;
    this.cancels.forEach((cancel) => cancel());
    this.cancels.clear();
  }

  private fire(kind: HangKind, why: string): void {
    if (this.stopped) return;
    this.stop();
    this.o.onHung(kind, why);
  }

  /** Runs fn every intervalMs, never overlapping itself. */
  private loop(intervalMs: number, fn: () => Promise<void>): void {
    const schedule = () => {
      const cancel = this.o.clock.after(intervalMs, () => {
        this.cancels.delete(cancel);
        if (this.stopped) return;
        void fn().then(() => {
          if (!this.stopped) schedule();
        });
      });
      this.cancels.add(cancel);
    };
    schedule();
  }
}
