// Snapshot work on a running QEMU: a snapshot-save/-load/-delete job run to its end with its
// progress, and the guest's pause measured from QEMU's own STOP and RESUME timestamps. While
// a job runs the supervisor leaves STOP/RESUME to it and declares no hang (QEMU 7.2 runs the
// job in its main loop, so QMP answers only when the job is done).
import type { Clock } from '../clock.js';
import type { SnapshotJobArgs } from '../qemu/commands.js';
import type { QmpEvent } from '../qemu/qmp.js';
import type { RunningVm } from './registry.js';

export type OnProgress = (phase: string, current: number, total: number) => void;

/** Owns run.job for one snapshot operation: sums the guest's pauses. */
export class PauseWatch {
  private stopAt: number | null = null;
  private total: number | null = null;

  constructor(private readonly run: RunningVm) {
    if (run.job) throw new Error('another snapshot job is running on this VM');
    run.job = { onEvent: (ev) => this.onEvent(ev) };
  }

  /** Milliseconds the vCPUs stood still (null: they never stopped). */
  get pauseMs(): number | null {
    return this.total === null ? null : Math.round(this.total);
  }

  /** The guest is stopped now (a STOP with no RESUME yet). */
  get stopped(): boolean {
    return this.stopAt !== null;
  }

  end(): void {
    if (this.run.job) this.run.job = null;
  }

  private onEvent(ev: QmpEvent): void {
    const at = ev.timestamp ? ev.timestamp.seconds * 1000 + ev.timestamp.microseconds / 1000 : Date.now();
    if (ev.event === 'STOP') this.stopAt = at;
    else if (ev.event === 'RESUME' && this.stopAt !== null) {
      this.total = (this.total ?? 0) + (at - this.stopAt);
      this.stopAt = null;
    }
  }
}

let seq = 0;

/** Starts a snapshot job and polls it to its end; throws with QEMU's error if it failed. */
export async function runJob(
  run: RunningVm,
  kind: 'save' | 'load' | 'delete',
  a: Omit<SnapshotJobArgs, 'jobId'>,
  clock: Clock,
  progress: OnProgress,
  phase: string,
): Promise<void> {
  const qmp = run.machine.qmp;
  const jobId = `snapshot-${kind}-${process.pid}-${++seq}`;
  progress(phase, 0, 1);
  await qmp.startSnapshotJob(kind, { ...a, jobId });
  for (;;) {
    const job = (await qmp.queryJobs()).find((j) => j.id === jobId);
    if (!job) throw new Error(`QEMU lost the ${kind} job`);
    progress(phase, job['current-progress'], Math.max(1, job['total-progress']));
    if (job.status === 'concluded' || job.status === 'null') {
      await qmp.dismissJob(jobId).catch(() => undefined);
      if (job.error) throw new Error(job.error);
      return;
    }
    await clock.sleep(100);
  }
}
