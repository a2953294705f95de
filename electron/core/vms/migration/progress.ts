// A migration's progress as the source sees it: QEMU's figures turned into progress events
// (the UI's bar, other hosts through the cluster) and, now and then, a line in the VM's journal.
import type { MigrationProgress } from '../../api/contract.js';
import { MiB } from '../../api/units.js';
import type { BlockJob, MigrationInfo } from '../../qemu/migration-commands.js';
import type { VmRecord } from '../../store/vm-repo.js';

/** How often progress goes into the VM's journal (the live event is more frequent). */
const JOURNAL_EVERY_MS = 5000;

/** Turns QEMU's figures into progress events, and a journal line now and then. */
export class ProgressReporter {
  private diskDone = 0;
  private diskTotal = 0;
  private lastJournal = 0;

  constructor(
    private readonly rec: VmRecord,
    /** The target, as the migration named it. */
    private readonly to: string,
    private readonly emit: (p: MigrationProgress) => void,
    private readonly note: (message: string) => void,
  ) {}

  disks(jobs: BlockJob[]): void {
    this.diskDone = jobs.reduce((s, j) => s + j.offset, 0);
    this.diskTotal = jobs.reduce((s, j) => s + j.len, 0);
  }

  report(phase: MigrationProgress['phase'], info: MigrationInfo | null): void {
    const ram = info?.ram;
    const p: MigrationProgress = {
      vmId: this.rec.id,
      vmName: this.rec.name,
      to: this.to,
      phase,
      ramTransferred: ram?.transferred ?? 0,
      ramRemaining: ram?.remaining ?? 0,
      ramTotal: ram?.total ?? 0,
      diskTransferred: this.diskDone,
      diskTotal: this.diskTotal,
      mbps: ram?.mbps ?? 0,
      expectedDowntimeMs: info?.['expected-downtime'] ?? null,
    };
    this.emit(p);
    const now = Date.now();
    if (phase === 'failed' || now - this.lastJournal < JOURNAL_EVERY_MS) return;
    this.lastJournal = now;
    this.note(describeProgress(p));
  }
}

export function describeProgress(p: MigrationProgress): string {
  const mib = (n: number) => `${Math.round(n / MiB)} MiB`;
  const parts = [`Migration: ${p.phase}`];
  if (p.diskTotal) parts.push(`disks ${mib(p.diskTransferred)} of ${mib(p.diskTotal)}`);
  if (p.ramTotal) parts.push(`RAM ${mib(p.ramTransferred)} sent, ${mib(p.ramRemaining)} left of ${mib(p.ramTotal)}`);
  if (p.mbps) parts.push(`${Math.round(p.mbps)} Mbit/s`);
  if (p.expectedDowntimeMs !== null) parts.push(`expected pause ${p.expectedDowntimeMs} ms`);
  return parts.join(', ');
}
