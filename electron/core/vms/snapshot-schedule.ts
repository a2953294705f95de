// Scheduled snapshots: per VM, every N seconds on the injected clock, keeping the newest K
// scheduled ones (snapshots taken by hand are never pruned). A scheduled snapshot holds the
// disks only (no pause, no RAM-sized image growth each hour), frozen by the guest agent where
// one answers. A failure is an error event and a notification, never a silent gap.
import type { SnapshotInfo, SnapshotSchedule, SnapshotTree } from '../api/contract.js';
import type { Clock } from '../clock.js';
import type { SnapshotRepo } from '../store/snapshot-repo.js';
import type { VmRecord } from '../store/vm-repo.js';
import type { CreateOptions } from './snapshots.js';
import { nextDue, retentionVictims, scheduledName } from './snapshot-tree.js';

/** What the scheduler does through the snapshot service and the journal. */
export interface ScheduleOps {
  vm(vmId: string): VmRecord | undefined;
  take(vmId: string, o: CreateOptions): Promise<SnapshotInfo>;
  prune(vmId: string, ids: string[]): Promise<void>;
  setSchedule(vmId: string, schedule: SnapshotSchedule | null, nextAt: number | null): SnapshotTree;
  failed(rec: VmRecord, message: string): void;
}

export class SnapshotScheduler {
  private readonly timers = new Map<string, () => void>();
  private stopped = false;

  constructor(
    private readonly repo: SnapshotRepo,
    private readonly clock: Clock,
    private readonly ops: ScheduleOps,
  ) {}

  /** Arms every stored schedule (one overdue while the host was down fires at once). */
  start(): void {
    for (const s of this.repo.schedules()) if (s.schedule) this.arm(s.vmId, s.schedule.nextAt ?? this.clock.now());
  }

  stop(): void {
    this.stopped = true;
    for (const cancel of this.timers.values()) cancel();
    this.timers.clear();
  }

  /** Sets or (null) removes a VM's schedule; the first snapshot comes one period from now. */
  set(vmId: string, schedule: SnapshotSchedule | null): SnapshotTree {
    this.timers.get(vmId)?.();
    this.timers.delete(vmId);
    const nextAt = schedule ? nextDue(this.clock.now(), schedule.everySec) : null;
    const tree = this.ops.setSchedule(vmId, schedule, nextAt);
    if (schedule && nextAt !== null) this.arm(vmId, nextAt);
    return tree;
  }

  private arm(vmId: string, at: number): void {
    if (this.stopped) return;
    this.timers.get(vmId)?.();
    const cancel = this.clock.after(Math.max(0, at - this.clock.now()), () => {
      this.timers.delete(vmId);
      void this.fire(vmId);
    });
    this.timers.set(vmId, cancel);
  }

  private async fire(vmId: string): Promise<void> {
    const rec = this.ops.vm(vmId);
    const schedule = this.repo.head(vmId).schedule;
    if (!rec || !schedule || this.stopped) return; // deleted, or turned off meanwhile
    const now = this.clock.now();
    const taken = new Set(this.repo.list(vmId).map((s) => s.name.toLowerCase()));
    const name = scheduledName(now, (n) => taken.has(n.toLowerCase()));
    try {
      await this.ops.take(vmId, {
        name,
        description: `every ${schedule.everySec} s, keep ${schedule.keep}`,
        memory: false,
        scheduled: true,
      });
      const victims = retentionVictims(this.repo.list(vmId), schedule.keep);
      if (victims.length)
        await this.ops.prune(
          vmId,
          victims.map((v) => v.id),
        );
    } catch (err) {
      this.ops.failed(this.ops.vm(vmId) ?? rec, `Scheduled snapshot "${name}" failed: ${(err as Error).message}`);
    }
    // still scheduled (and the same schedule or a new one): the next one a period after this one
    const still = this.ops.vm(vmId) && this.repo.head(vmId).schedule;
    if (!still || this.stopped) return;
    const next = nextDue(now, still.everySec);
    this.repo.setSchedule(vmId, still, next);
    this.arm(vmId, next);
  }
}
