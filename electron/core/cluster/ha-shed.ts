// Load shedding carried out: on the HA leader, at each sampling round while balancing is on for
// the cluster, the Balancer (ha/decisions/balance.ts) reads every host's published load and,
// when it proposes a move, the VM is live-migrated by its host (`vm.migrate` over the peer
// API). One move at a time in the whole cluster: the record of a move under way is in etcd, so
// a new leader waits for it too; each VM's last move is kept there, and its cooldown with it.
import type { Etcd3 } from 'etcd3';
import { Balancer, BALANCE_DEFAULTS, type BalanceOptions } from '../ha/decisions/balance.js';
import type { HaVm, HostView } from '../ha/decisions/model.js';
import type { HostAlive } from './hosts.js';
import { keys } from './keys.js';
import { restsFrom, type ShedRecord } from './shed-records.js';

/** The figures are published every 5 s: a round more often would see nothing new. */
export const ROUND_MS = 5000;
/** A move still "moving" after this long was left by a leader that died: it no longer holds the others. */
const STALE_MS = 20 * 60_000;
/** After a move, the next round waits (at most this long) for both hosts to publish figures that show it. */
const SETTLE_MS = 60_000;

export interface ShedderDeps {
  etcd: Etcd3;
  isLeader(): boolean;
  /** The cluster-wide flag (ha balance --on|--off), from etcd. */
  enabled(): boolean;
  snapshot(): { hosts: HostView[]; vms: Array<HaVm & { id: string }> };
  records(): ShedRecord[];
  /** A host's published guest load (which VMs it runs now, by id). */
  loadOf(hostId: string): HostAlive['load'] | undefined;
  /** Live-migrates `vm` from host `from` (an id) to the host named `to`, through its own host. */
  migrate(from: string, vm: string, to: string): Promise<unknown>;
  hostName(id: string): string;
  log(line: string): void;
  opts?: BalanceOptions;
  now?: () => number;
}

export class LoadShedder {
  private balancer: Balancer | null = null;
  private lastRound = 0;
  private inFlight: Promise<void> | null = null;
  /** Why the last round moved nothing (for the log, once per change). */
  private lastWhy = '';

  constructor(private readonly d: ShedderDeps) {}

  get opts(): BalanceOptions {
    return this.d.opts ?? BALANCE_DEFAULTS;
  }

  /** Called every tick of the HA host; runs a round every ROUND_MS on the leader while balancing is on. */
  async tick(): Promise<void> {
    const now = (this.d.now ?? Date.now)();
    if (!this.d.isLeader() || !this.d.enabled()) {
      // holding time counts again from the next round it is on and led here
      this.balancer = null;
      return;
    }
    if (this.inFlight || now - this.lastRound < ROUND_MS) return;
    this.lastRound = now;
    const wait = this.waitFor(now);
    if (wait) return this.note(wait);
    this.balancer ??= new Balancer(this.opts);
    for (const r of this.d.records()) this.balancer.moved(r.vm, restsFrom(r));
    const { hosts, vms } = this.d.snapshot();
    const report = this.balancer.round(now, hosts, vms);
    const p = report.proposal;
    if (!p) return this.note(report.why);
    const vm = vms.find((v) => v.name === p.vm)!;
    const loads = Object.fromEntries(Object.entries(report.loads).map(([id, l]) => [this.d.hostName(id), l]));
    const rec: ShedRecord = {
      vmId: vm.id,
      vm: p.vm,
      from: p.from,
      to: p.to,
      at: now,
      endedAt: null,
      outcome: 'moving',
      why: p.why,
      before: report.imbalance,
      after: report.after ?? report.imbalance,
      loads,
      error: null,
    };
    // begun only while the flag in etcd says on: no move starts after `ha balance --off` has
    // returned, however late this leader's copy of the flag (a watch event) arrives under load
    const begun = await this.d.etcd
      .if(keys.haBalance, 'Value', '==', 'on')
      .then(this.d.etcd.put(keys.haShed(vm.id)).value(JSON.stringify(rec)))
      .commit();
    if (!begun.succeeded) {
      this.balancer = null;
      return this.note('balancing is off in the cluster');
    }
    this.balancer.moved(p.vm, now);
    this.lastWhy = '';
    this.d.log(`ha: balancing moves ${p.vm} from ${this.d.hostName(p.from)} to ${this.d.hostName(p.to)}: ${p.why}`);
    this.inFlight = this.carryOut(rec).finally(() => (this.inFlight = null));
  }

  /** Why no round may run now: a move under way, or a finished one the figures do not show yet. */
  private waitFor(now: number): string | null {
    const records = this.d.records();
    const moving = records.find((r) => r.outcome === 'moving' && now - r.at < STALE_MS);
    if (moving) return `waiting for the move of ${moving.vm} to end`;
    const last = records.filter((r) => r.outcome === 'moved').sort((a, b) => restsFrom(b) - restsFrom(a))[0];
    if (last && now - restsFrom(last) < SETTLE_MS) {
      const there = this.d.loadOf(last.to)?.vms[last.vmId];
      const left = !this.d.loadOf(last.from)?.vms[last.vmId];
      if (!there || !left)
        return `waiting for ${this.d.hostName(last.from)} and ${this.d.hostName(last.to)} to publish figures after moving ${last.vm}`;
    }
    return null;
  }

  private async carryOut(rec: ShedRecord): Promise<void> {
    let done: ShedRecord;
    try {
      await this.d.migrate(rec.from, rec.vmId, this.d.hostName(rec.to));
      done = { ...rec, endedAt: Date.now(), outcome: 'moved' };
      this.d.log(`ha: balancing moved ${rec.vm} to ${this.d.hostName(rec.to)}`);
    } catch (err) {
      done = { ...rec, endedAt: Date.now(), outcome: 'failed', error: (err as Error).message };
      this.d.log(`ha: balancing could not move ${rec.vm}: ${done.error}`);
    }
    // the VM rests for its cooldown either way; a record that cannot be written is tried again
    for (let i = 0; i < 5; i++) {
      try {
        await this.d.etcd.put(keys.haShed(rec.vmId)).value(JSON.stringify(done));
        break;
      } catch (err) {
        this.d.log(`ha: recording the move of ${rec.vm}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    this.balancer?.moved(rec.vm, done.endedAt!);
  }

  /** Logs why nothing moved when the reason changes (not when only its figures do). */
  private note(why: string): void {
    const shape = why.replace(/[\d.]+/g, '#');
    if (shape !== this.lastWhy) this.d.log(`ha: balancing: ${why}`);
    this.lastWhy = shape;
  }

  /** Waits for a move under way (at close). */
  async settle(): Promise<void> {
    await this.inFlight;
  }
}
