// The target's side of a failover: a VM the leader moved to this host is started here only after
// reading this host as its owner at the move's epoch (ha/decisions/ownership.ts), adopting its
// config from the cluster first when this host never had it. A start that fails is tried again
// after a pause that doubles, a few times, and then the failover record says it failed.
import type { Etcd3 } from 'etcd3';
import { startRefusal, type Ownership } from '../ha/decisions/ownership.js';
import { readOwner } from '../ha/owners-etcd.js';
import { adoptHaVm } from '../vms/ha-adopt.js';
import type { Vms } from '../vms/index.js';
import type { HostDirectory } from './directory.js';
import type { FailoverJournal } from './ha-failover-journal.js';
import { settled, type Failover } from './ha-records.js';
import type { Inventory } from './inventory.js';

const MAX_START_TRIES = 5;
/**
 * Pause after a failed takeover start, doubled at each: what failed it (the disk still locked by
 * a QEMU being killed on the host it left) often clears within seconds.
 */
const START_RETRY_MS = 2000;

export interface TakeoverDeps {
  etcd: Etcd3;
  hostId: string;
  vms: Vms;
  directory: HostDirectory;
  inventory: Inventory;
  journal: FailoverJournal;
  log(line: string): void;
}

export class HaTakeover {
  /** Starts tried, by `vmId@epoch`. */
  private readonly tries = new Map<string, number>();
  /** When a takeover that failed may be tried again (Date.now ms), by `vmId@epoch`. */
  private readonly retryAt = new Map<string, number>();
  private readonly starting = new Set<string>();

  constructor(private readonly d: TakeoverDeps) {}

  /** Starts each VM moved here whose record and owner say so, one start per VM at a time. */
  act(failovers: Iterable<Failover>, owners: ReadonlyMap<string, Ownership>): void {
    for (const f of failovers) {
      const o = owners.get(f.vmId);
      if (f.to !== this.d.hostId || settled(f) || !o || o.owner !== this.d.hostId || o.epoch !== f.epoch) continue;
      const key = `${f.vmId}@${f.epoch}`;
      if (this.starting.has(f.vmId) || (this.tries.get(key) ?? 0) >= MAX_START_TRIES || (this.retryAt.get(key) ?? 0) > Date.now()) continue;
      this.starting.add(f.vmId);
      void this.takeOver(f)
        .catch((err: Error) => this.d.log(`ha: taking over ${f.vm}: ${err.message}`))
        .finally(() => this.starting.delete(f.vmId));
    }
  }

  /** Starts a VM moved here, after reading this host as its owner at the move's epoch. */
  private async takeOver(f: Failover): Promise<void> {
    const key = `${f.vmId}@${f.epoch}`;
    this.tries.set(key, (this.tries.get(key) ?? 0) + 1);
    const refusal = startRefusal(this.d.hostId, await readOwner(this.d.etcd, f.vmId), f.epoch);
    if (refusal) return this.d.log(`ha: not starting ${f.vm}: ${refusal}`);
    const { vms } = this.d;
    const from = this.d.directory.nameOf(f.from);
    try {
      if (!vms.ctx.vms.get(f.vmId)) {
        const stored = this.d.inventory.config(f.vmId) ?? (await this.d.inventory.readConfig(f.vmId));
        if (!stored) throw new Error('its config is not in the cluster');
        adoptHaVm(
          vms,
          { id: f.vmId, name: stored.name, config: stored.config },
          `Taken over from host ${from} (HA failover, epoch ${f.epoch})`,
        );
      }
      const state = vms.service.get(f.vmId).state;
      if (state !== 'running') await vms.lifecycle.start(f.vmId, `Starting after HA failover from host ${from} (epoch ${f.epoch})`);
      await this.d.journal.record(f, { at: Date.now(), what: 'started', detail: `running on ${this.d.directory.nameOf(this.d.hostId)}` });
    } catch (err) {
      const why = (err as Error).message;
      const tries = this.tries.get(key) ?? 0;
      this.retryAt.set(key, Date.now() + START_RETRY_MS * 2 ** (tries - 1));
      if (tries >= MAX_START_TRIES) await this.d.journal.record(f, { at: Date.now(), what: 'start failed', detail: why });
      throw err;
    }
  }
}
