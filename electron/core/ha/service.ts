// What a host answers about HA (`ha.status`, `ha.balance`), and whether it may start an HA VM.
// On a single host there is no lease and no leader: HA VMs are listed with no owner, and a
// fence left by the fencer still blocks HA starts. The cluster layer plugs in HaCluster at the
// merge: the leader's pending moves, the ownership records and the live view of every host.
import type { BalanceReport, HaStatus, VmConfig } from '../api/contract.js';
import { Balancer, type BalanceOptions } from './decisions/balance.js';
import type { Pending } from './decisions/leader.js';
import type { ClusterView } from './decisions/model.js';
import type { Ownership } from './decisions/ownership.js';
import { readFenceRecord } from './fencer/client.js';
import type { FenceRecord } from './fencer/protocol.js';

/** What the cluster layer provides once this host is a member. */
export interface HaCluster {
  view: ClusterView;
  /** The ownership record of an HA VM (kept fresh from an etcd watch). */
  owner(vm: string): Ownership | null;
  /** The leader's moves not yet settled (empty when this host does not lead). */
  pending(): Pending[];
  /** Why this host may not start HA VM `vmId` now (fenced and not rejoined, no live lease, owned elsewhere), or null. */
  startBlocker(vmId?: string): string | null;
  /** A host's name for its id (reports speak of names). */
  hostName?(id: string): string;
  /** Load balancing for the whole cluster: its flag and its moves, kept in etcd. */
  balancing?: BalancingControl;
}

/** What the cluster keeps of load balancing (cluster/ha-balancing.ts). */
export interface BalancingControl {
  opts: BalanceOptions;
  enabled(): boolean;
  set(on: boolean): Promise<void>;
  /** When each VM moved (or a move of it was tried) last. */
  cooldowns(): Array<{ vm: string; at: number }>;
  moves(): NonNullable<BalanceReport['moves']>;
}

export interface HaServiceDeps {
  vms(): Array<{ name: string; state: string; config: Pick<VmConfig, 'ha'> }>;
  /** The fencer's dir: its fence record blocks HA starts until the host rejoins. */
  fencerDir: string;
  balanceFlag: { get(): boolean; set(on: boolean): void };
  now(): number;
  cluster?: HaCluster | null;
  /** When the last fence reported was recorded (kept across host restarts: each fence is told once). */
  fenceReported?: { get(): number | null; set(at: number): void };
  /** A guest the fencer killed: an event in its timeline and a notification. */
  onFenced?(vm: string, rec: FenceRecord): void;
}

export class HaService {
  private readonly balancer = new Balancer();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: HaServiceDeps) {}

  /** Plugged in by the cluster layer when this host joins (null when it leaves). */
  setCluster(cluster: HaCluster | null): void {
    this.deps.cluster = cluster;
  }

  startBlocker(vmId?: string): string | null {
    const fence = readFenceRecord(this.deps.fencerDir);
    if (fence)
      return `this host fenced its HA guests at ${new Date(fence.at).toISOString()} and has not rejoined the cluster with a fresh lease yet`;
    return this.deps.cluster?.startBlocker(vmId) ?? null;
  }

  /** Looks for a new fence record every `ms` until stop(): the fencer writes it while no guest may run. */
  watch(ms = 2000): void {
    this.timer ??= setInterval(() => {
      try {
        this.reportFence();
      } catch {} // a read that races the record's rename is tried again next time
    }, ms);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Tells each guest of a new fence record that it was fenced, once. */
  reportFence(): void {
    const rec = readFenceRecord(this.deps.fencerDir);
    if (!rec || !this.deps.fenceReported || this.deps.fenceReported.get() === rec.at) return;
    this.deps.fenceReported.set(rec.at);
    for (const g of rec.killed) this.deps.onFenced?.(g.vm, rec);
  }

  status(): HaStatus {
    const c = this.deps.cluster ?? null;
    const fence = readFenceRecord(this.deps.fencerDir);
    const local = this.deps.vms().filter((v) => v.config.ha.enabled);
    // in a cluster, the other hosts' HA VMs too: their state is their owner's to tell
    const remote = (c?.view.vms() ?? [])
      .filter((v) => !local.some((l) => l.name === v.name))
      .map((v) => {
        const o = c!.owner(v.name);
        const { priority, group, hosts } = v.ha;
        return { name: v.name, priority, group, hosts, owner: o?.owner ?? null, epoch: o?.epoch ?? null, state: 'on another host' };
      });
    return {
      clustered: !!c,
      startBlocker: this.startBlocker(),
      fence: fence && { at: fence.at, killed: fence.killed.map((g) => g.vm) },
      balance: c?.balancing?.enabled() ?? this.deps.balanceFlag.get(),
      vms: [
        ...local.map((v) => {
          const o = c?.owner(v.name) ?? null;
          const { priority, group, hosts } = v.config.ha;
          return { name: v.name, priority, group, hosts, owner: o?.owner ?? null, epoch: o?.epoch ?? null, state: v.state };
        }),
        ...remote,
      ],
      pending: (c?.pending() ?? []).map((p) => ({ vm: p.vm, to: p.to, epoch: p.epoch, since: p.sinceMs })),
    };
  }

  async balance(mode: 'dry-run' | 'on' | 'off'): Promise<BalanceReport> {
    const c = this.deps.cluster;
    const b = c?.balancing;
    if (mode !== 'dry-run') {
      if (b) await b.set(mode === 'on');
      else this.deps.balanceFlag.set(mode === 'on');
    }
    const enabled = b ? b.enabled() : this.deps.balanceFlag.get();
    if (!c)
      return { enabled, imbalance: null, loads: {}, proposal: null, why: 'this host is not in a cluster: there is nowhere to move a VM' };
    // a dry run asks what would move now: no holding time, nothing recorded; the cooldowns are the cluster's
    const probe = new Balancer({ ...(b?.opts ?? this.balancer.opts), holdMs: 0 });
    for (const m of b?.cooldowns() ?? []) probe.moved(m.vm, m.at);
    const name = (id: string) => c.hostName?.(id) ?? id;
    const r = probe.round(this.deps.now(), c.view.hosts(), c.view.vms(), name);
    const p = r.proposal;
    return {
      enabled,
      imbalance: r.imbalance,
      loads: Object.fromEntries(Object.entries(r.loads).map(([id, l]) => [name(id), l])),
      proposal: p && { vm: p.vm, from: name(p.from), to: name(p.to), why: p.why },
      why: r.why,
      after: r.after,
      held: r.held,
      moves: b?.moves() ?? [],
    };
  }
}
