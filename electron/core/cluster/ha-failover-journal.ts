// A failover's story, told where people read it: the target appends "started" (or "start
// failed") to the record in etcd and writes the whole timeline into the VM's journal with a
// notification; the host that was fenced, once back, reports its fencer's real fence time
// (ha-failover-store.ts), and the target's journal tells the story again with it.
import type { Etcd3 } from 'etcd3';
import type { FenceRecord } from '../ha/fencer/protocol.js';
import type { Vms } from '../vms/index.js';
import type { HostDirectory } from './directory.js';
import { appendStep, fenceReported, updateFailover, withReportedFence } from './ha-failover-store.js';
import { parseFailover, settled, stepAt, storyOf, type Failover, type TimelineStep } from './ha-records.js';
import { keys } from './keys.js';

export interface FailoverJournalDeps {
  etcd: Etcd3;
  hostId: string;
  vms: Vms;
  directory: HostDirectory;
  log(line: string): void;
}

export class FailoverJournal {
  /** Failovers (vmId@epoch) whose reported fence time the VM's journal has told. */
  private readonly fenceNoted = new Set<string>();

  constructor(private readonly d: FailoverJournalDeps) {}

  /** Appends a step to the failover's timeline in etcd and tells the VM's own journal the whole story. */
  async record(f: Failover, step: TimelineStep): Promise<void> {
    // the record as it is now: the fenced host may have put its report in meanwhile
    const next = (await updateFailover(this.d.etcd, f.vmId, f.epoch, appendStep(step))) ?? { ...f, timeline: [...f.timeline, step] };
    const rec = this.d.vms.ctx.vms.get(f.vmId);
    if (!rec) return;
    const story = storyOf(next);
    if (fenceReported(next)) this.fenceNoted.add(`${f.vmId}@${f.epoch}`);
    const j = this.d.vms.journal;
    const from = this.d.directory.nameOf(f.from);
    if (step.what === 'started') {
      const took = ((step.at - stepAt(f, 'lease expired')) / 1000).toFixed(1);
      j.note(rec, `HA failover from host ${from} at epoch ${f.epoch}: ${story}`, 'ha-failover');
      j.notify(
        rec,
        'warning',
        'HA failover',
        `"${f.vm}" runs on this host now: host ${from} lost its lease (${took} s from expiry to start).`,
      );
    } else {
      j.error(rec, `HA failover from host ${from} did not start it: ${story}`);
      j.notify(rec, 'error', 'HA failover failed', `"${f.vm}" could not start after host ${from} lost its lease: ${step.detail}`);
    }
  }

  /** Back after a fence: our fencer's own time goes into the failovers of the VMs it fenced. */
  async reportFence(rec: FenceRecord): Promise<void> {
    const self = this.d.directory.nameOf(this.d.hostId);
    const all = await this.d.etcd.getAll().prefix(keys.haFailovers).strings();
    for (const raw of Object.values(all)) {
      const f = parseFailover(raw);
      if (!f || f.from !== this.d.hostId) continue;
      const done = await updateFailover(this.d.etcd, f.vmId, f.epoch, (cur) => withReportedFence(cur, rec, self));
      if (done) this.d.log(`ha: reported to the cluster when the fencer fenced ${f.vm}: ${new Date(rec.at).toISOString()}`);
    }
  }

  /** A failover this host started whose fenced host has now reported its fence: the journal says so. */
  noteReportedFence(f: Failover): void {
    const key = `${f.vmId}@${f.epoch}`;
    if (f.to !== this.d.hostId || !settled(f) || !fenceReported(f) || this.fenceNoted.has(key)) return;
    const rec = this.d.vms.ctx.vms.get(f.vmId);
    if (!rec) return;
    this.fenceNoted.add(key);
    const from = this.d.directory.nameOf(f.from);
    this.d.vms.journal.note(
      rec,
      `HA failover from host ${from} at epoch ${f.epoch}, with the fence time host ${from} reported on its return: ${storyOf(f)}`,
      'ha-failover',
    );
  }
}
