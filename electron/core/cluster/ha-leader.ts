// The HA leader: one host of the cluster, chosen by an etcd election, that watches the hosts'
// HA leases and, when one expires, reassigns that host's HA VMs (ha/decisions: priority,
// anti-affinity, preferred hosts, room, shared pools). Each move is one etcd transaction that
// succeeds only if the ownership record is still what the leader read: it writes the new owner
// at epoch + 1 and the failover's timeline together, so a second leader can never move a VM
// twice and the target sees the order and its epoch at once.
import type { Campaign, Etcd3 } from 'etcd3';
import { HaLeader } from '../ha/decisions/leader.js';
import type { HaVm, HostView } from '../ha/decisions/model.js';
import { encodeOwnership } from '../ha/decisions/ownership.js';
import type { Failover } from './ha-records.js';
import { keys } from './keys.js';

/**
 * A leader's election key lives this long after its host stops renewing it (seconds). A dead
 * leader's HA lease (TTL 10 s, renewed every 2.5 s) lasts at least 7.5 s after its death, so a
 * key that lasts at most 7 s has made way for the next leader by then: a longer TTL would delay
 * the failover of the leader's own guests, a shorter one only costs keepalives (etcd3 renews at
 * a third of the TTL, and every host campaigns: many of an idle etcd member's calls).
 */
const ELECTION_TTL = 7;

export interface LeaderDeps {
  etcd: Etcd3;
  hostId: string;
  /** The cluster as it is now: hosts (alive = holds its HA lease) and HA VMs with owners and epochs. */
  snapshot(): { hosts: HostView[]; vms: Array<HaVm & { id: string }> };
  /** When the leader saw each host's HA lease go (ms since the epoch). */
  expiredAt(hostId: string): number | null;
  /** The failover records, to tell when a pending move has started. */
  failover(vmId: string): Failover | null;
  hostName(id: string): string;
  marginMs: number;
  log(line: string): void;
}

export class HaLeaderLoop {
  private readonly leader = new HaLeader();
  private campaign: Campaign | null = null;
  private leading = false;
  private closed = false;
  private running: Promise<void> | null = null;

  constructor(private readonly d: LeaderDeps) {}

  get isLeader(): boolean {
    return this.leading;
  }

  get pending() {
    return this.leading ? this.leader.pending : [];
  }

  start(): void {
    if (this.closed) return;
    const c = this.d.etcd.election(keys.haElection, ELECTION_TTL).campaign(this.d.hostId);
    this.campaign = c;
    c.on('elected', () => {
      this.leading = true;
      this.d.log('ha: this host leads HA failover');
    });
    c.on('error', (err: Error) => {
      if (this.campaign !== c) return;
      this.leading = false;
      this.campaign = null;
      if (this.closed) return;
      this.d.log(`ha: leader campaign failed (${err.message}); campaigning again`);
      setTimeout(() => this.start(), 1000).unref();
    });
  }

  /** One round, if this host leads; rounds never overlap. */
  tick(): Promise<void> {
    if (!this.leading || this.running) return this.running ?? Promise.resolve();
    this.running = this.round()
      .catch((err: Error) => this.d.log(`ha: leader round: ${err.message}`))
      .finally(() => (this.running = null));
    return this.running;
  }

  private async round(): Promise<void> {
    const { hosts, vms } = this.d.snapshot();
    const ids = new Map(vms.map((v) => [v.name, v.id]));
    const now = Date.now();
    const r = this.leader.round(now, hosts, vms);
    if (r.expired.length) this.leader.forgetTargets(r.expired);
    for (const p of this.leader.pending) {
      const f = this.d.failover(ids.get(p.vm) ?? '');
      if (f && f.epoch === p.epoch && f.timeline.some((s) => s.what === 'started' || s.what === 'start failed')) this.leader.settled(p.vm);
    }
    for (const s of r.plan.stranded) this.d.log(`ha: ${s.vm} (on ${this.d.hostName(s.from)}) has nowhere to go: ${s.why}`);
    for (const m of r.plan.moves) {
      const id = ids.get(m.vm)!;
      const expired = this.d.expiredAt(m.from) ?? now;
      const failover: Failover = {
        vmId: id,
        vm: m.vm,
        from: m.from,
        to: m.to,
        epoch: m.epoch,
        timeline: [
          { at: expired, what: 'lease expired', detail: `${this.d.hostName(m.from)} stopped renewing its HA lease` },
          {
            at: expired - this.d.marginMs,
            what: 'fenced',
            // the host's own time replaces this when it comes back (ha-failover-store.ts)
            detail: `estimated: ${this.d.hostName(m.from)}'s fencer kills its HA guests by its deadline, ${this.d.marginMs / 1000} s before its lease can expire`,
          },
          { at: Date.now(), what: 'reassigned', detail: `to ${this.d.hostName(m.to)} at epoch ${m.epoch}: ${m.why}` },
        ],
      };
      const seen = encodeOwnership({ owner: m.from, epoch: m.epoch - 1 });
      const res = await this.d.etcd
        .if(keys.haOwner(id), 'Value', '==', seen)
        .then(
          this.d.etcd.put(keys.haOwner(id)).value(encodeOwnership({ owner: m.to, epoch: m.epoch })),
          this.d.etcd.put(keys.haFailover(id)).value(JSON.stringify(failover)),
        )
        .commit()
        .catch((err: Error) => {
          this.d.log(`ha: moving ${m.vm}: ${err.message}`);
          return { succeeded: false };
        });
      if (res.succeeded)
        this.d.log(`ha: ${m.vm} reassigned from ${this.d.hostName(m.from)} to ${this.d.hostName(m.to)} at epoch ${m.epoch}`);
      else this.leader.failed(m.vm);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.leading = false;
    const c = this.campaign;
    this.campaign = null;
    await c?.resign().catch(() => undefined);
  }
}
