// Snapshot work on a running QEMU: a snapshot-save/-load/-delete job run to its end, and the
// guest's pause measured from QEMU's own STOP and RESUME timestamps. The job's end is heard as
// its JOB_STATUS_CHANGE event, not polled for: the guest resumes (and the call returns) as soon
// as QEMU is done. While a job runs the supervisor leaves STOP/RESUME to it and declares no
// hang (QEMU 7.2 runs the job in its main loop, so QMP answers only when the job is done).
import type { Clock } from '../clock.js';
import type { SnapshotJobArgs } from '../qemu/commands.js';
import type { QmpEvent } from '../qemu/qmp.js';
import type { RunningVm } from './registry.js';

export type OnProgress = (phase: string, current: number, total: number) => void;

/** A job is over for QEMU: concluded (awaiting dismissal) or already gone. */
const OVER = new Set(['concluded', 'null']);
/** Only if an event went missing: how often to ask QEMU whether the job is still there. */
const SAFETY_POLL_MS = 2000;

/** Owns run.job for one snapshot operation: sums the guest's pauses and hears its jobs end. */
export class JobWatch {
  private stopAt: number | null = null;
  private total: number | null = null;
  private readonly over = new Set<string>();
  private readonly waiters = new Map<string, () => void>();

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

  /** Resolves once QEMU reports job `id` over. Ask before starting the job: the event may come first. */
  ended(id: string): Promise<void> {
    if (this.over.has(id)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.set(id, resolve));
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
    } else if (ev.event === 'JOB_STATUS_CHANGE' && OVER.has(String(ev.data?.status))) {
      const id = String(ev.data?.id);
      this.over.add(id);
      this.waiters.get(id)?.();
      this.waiters.delete(id);
    }
  }
}

let seq = 0;

/**
 * Runs a snapshot job to its end; throws with QEMU's error if it failed. `whenOver` runs the
 * moment QEMU reports the job over, before the job's result is asked for (a guest the caller
 * paused resumes one round trip sooner).
 */
export async function runJob(
  run: RunningVm,
  watch: JobWatch,
  kind: 'save' | 'load' | 'delete',
  a: Omit<SnapshotJobArgs, 'jobId'>,
  clock: Clock,
  progress: OnProgress,
  phase: string,
  whenOver?: () => Promise<void>,
): Promise<void> {
  const qmp = run.machine.qmp;
  const jobId = `snapshot-${kind}-${process.pid}-${++seq}`;
  progress(phase, 0, 1);
  const ended = watch.ended(jobId);
  // QEMU 7.2 answers only once the job is over; a newer one may answer first
  await qmp.startSnapshotJob(kind, { ...a, jobId });
  for (let over = false; !over;) {
    over = await new Promise<boolean>((resolve) => {
      const cancel = clock.after(SAFETY_POLL_MS, () => resolve(false));
      void ended.then(() => {
        cancel();
        resolve(true);
      });
    });
    if (!over) over = !(await qmp.queryJobs()).some((j) => j.id === jobId && !OVER.has(j.status));
  }
  const resumed = whenOver?.();
  // asked together: QEMU answers in order, so the query still sees the job the dismissal removes
  const [jobs] = await Promise.all([qmp.queryJobs(), qmp.dismissJob(jobId).catch(() => undefined)]);
  await resumed;
  const job = jobs.find((j) => j.id === jobId);
  if (!job) throw new Error(`QEMU lost the ${kind} job`);
  progress(phase, job['current-progress'], Math.max(1, job['total-progress']));
  if (job.error) throw new Error(job.error);
}
