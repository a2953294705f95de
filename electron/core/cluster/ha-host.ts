// One host's HA in a cluster. It holds the host's HA lease (ha/host-liveness.ts: renewed by us,
// guarded by the fencer process), keeps the ownership records, the failover records and the
// other hosts' HA leases fresh from etcd watches, runs the leader loop (ha-leader.ts), and acts
// as a target (ha-takeover.ts): it starts a VM the leader moved to it only after reading itself
// as owner at that epoch. A host that comes back finds its HA VMs owned elsewhere: it never
// starts them and drops their stale records (their files stay: they are the new owner's now).
import path from 'node:path';
import type { Etcd3, Watcher } from 'etcd3';
import type { VmInfo } from '../api/contract.js';
import { bootMemoryMiB } from '../api/rules.js';
import type { HaVm, HostView } from '../ha/decisions/model.js';
import { decodeOwnership, type Ownership } from '../ha/decisions/ownership.js';
import type { Guard } from '../ha/fencer/protocol.js';
import { HostLiveness } from '../ha/host-liveness.js';
import { claimOwner, moveOwner, readOwner } from '../ha/owners-etcd.js';
import type { HaCluster } from '../ha/service.js';
import { dropMovedHaVm } from '../vms/ha-adopt.js';
import { sharedPoolsNeeded } from '../vms/ha-storage.js';
import type { Vms } from '../vms/index.js';
import type { HostDirectory } from './directory.js';
import { HaBalancing } from './ha-balancing.js';
import { FailoverJournal } from './ha-failover-journal.js';
import { HaLeaderLoop } from './ha-leader.js';
import { parseAlive, parseFailover, settled, stepAt, type Failover, type HaAlive } from './ha-records.js';
import { HaTakeover } from './ha-takeover.js';
import type { Inventory, StoredConfig } from './inventory.js';
import { keys } from './keys.js';

export const HA_TTL_SEC = 10;
/** The fencer acts this long before the earliest expiry: 2 s promised, the rest for a late timer. */
export const HA_MARGIN_MS = 3000;
const TICK_MS = 1000;
/** A host that does not lead reads the configs again this often (in ticks), in case their watch stalled. */
const REREAD_TICKS = 30;

export interface HaHostDeps {
  etcd: Etcd3;
  hostId: string;
  dataDir: string;
  vms: Vms;
  directory: HostDirectory;
  inventory: Inventory;
  /** Live-migrates `vm` from host `from` (an id) to the host named `to` (load balancing). */
  migrate(from: string, vm: string, to: string): Promise<unknown>;
  log(line: string): void;
}

export class HaHost implements HaCluster {
  private readonly owners = new Map<string, Ownership>();
  private readonly failovers = new Map<string, Failover>();
  private readonly alive = new Map<string, HaAlive>();
  private readonly expired = new Map<string, number>();
  private configs: StoredConfig[] = [];
  private ownersFresh = false;
  /** HA VMs whose ownership record this host made sure of since they last started here. */
  private readonly claimed = new Set<string>();
  private watchers: Watcher[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly off: Array<() => void> = [];
  readonly liveness: HostLiveness;
  readonly leader: HaLeaderLoop;
  readonly balancing: HaBalancing;
  private readonly journal: FailoverJournal;
  private readonly takeover: HaTakeover;

  constructor(private readonly d: HaHostDeps) {
    const self = d.hostId;
    this.journal = new FailoverJournal(d);
    this.takeover = new HaTakeover({ ...d, journal: this.journal });
    this.liveness = new HostLiveness(d.etcd, {
      hostId: self,
      fencerDir: path.join(d.dataDir, 'ha'),
      aliveKey: keys.haAliveOf(self),
      ttlSec: HA_TTL_SEC,
      marginMs: HA_MARGIN_MS,
      aliveValue: () => JSON.stringify({ pools: d.vms.ctx.pools.shared() } satisfies HaAlive),
      guards: () => this.guards(),
      onJoined: () => this.resync(),
      onFenceReport: (rec) => this.journal.reportFence(rec),
      onStallCleared: (rec) => void this.restartFenced(rec.killed.map((g) => g.vm)),
      onEvent: (what) => d.log(`ha: ${what}`),
    });
    this.leader = new HaLeaderLoop({
      etcd: d.etcd,
      hostId: self,
      snapshot: () => ({ hosts: this.hostViews(), vms: this.haVms() }),
      expiredAt: (h) => this.expired.get(h) ?? null,
      failover: (id) => this.failovers.get(id) ?? null,
      hostName: (id) => d.directory.nameOf(id),
      marginMs: HA_MARGIN_MS,
      log: d.log,
    });
    this.balancing = new HaBalancing({
      etcd: d.etcd,
      hostId: self,
      vms: d.vms,
      directory: d.directory,
      inventory: d.inventory,
      isLeader: () => this.leader.isLeader,
      snapshot: () => ({ hosts: this.hostViews(), vms: this.haVms() }),
      configs: () => this.configs,
      migrate: d.migrate,
      log: d.log,
    });
  }

  /** Before the inventory publishes: drop the records of HA VMs that failed over while we were away. */
  async reconcile(): Promise<void> {
    await this.readOwners();
    await this.dropStale();
  }

  async start(): Promise<void> {
    const follow = async (prefix: string, put: (id: string, v: string) => void, del: (id: string) => void) => {
      const w = await this.d.etcd.watch().prefix(prefix).create();
      w.on('put', (kv) => put(kv.key.toString().slice(prefix.length), kv.value.toString()));
      w.on('delete', (kv) => del(kv.key.toString().slice(prefix.length)));
      w.on('error', (err) => this.d.log(`ha: watch ${prefix}: ${String(err)}`));
      this.watchers.push(w);
      for (const [k, v] of Object.entries(await this.d.etcd.getAll().prefix(prefix).strings())) put(k.slice(prefix.length), v);
    };
    await follow(
      keys.haOwners,
      (id, v) => this.onOwner(id, decodeOwnership(v)),
      (id) => this.owners.delete(id),
    );
    await follow(
      keys.haFailovers,
      (id, v) => {
        const f = parseFailover(v);
        if (f) this.failovers.set(id, f);
        if (f) this.journal.noteReportedFence(f);
        this.poke();
      },
      (id) => this.failovers.delete(id),
    );
    await follow(
      keys.haAlive,
      (id, v) => {
        this.alive.set(id, parseAlive(v));
        this.expired.delete(id);
      },
      (id) => this.aliveGone(id),
    );
    const changed = (vm: VmInfo) => {
      if (!vm.config.ha.enabled) return void this.claimed.delete(vm.id);
      this.liveness.guardsChanged();
      // a record is made once per run here (made HA, started, arrived): every other change of
      // the VM (stats, a note) would only send etcd a transaction that cannot succeed
      if (vm.state === 'stopped' || vm.state === 'crashed' || vm.state === 'crash-loop') return void this.claimed.delete(vm.id);
      if (this.claimed.has(vm.id)) return;
      this.claimed.add(vm.id);
      void claimOwner(this.d.etcd, vm.id, this.d.hostId).catch(() => this.claimed.delete(vm.id));
    };
    await this.balancing.start();
    this.d.vms.journal.on('changed', changed);
    this.off.push(() => this.d.vms.journal.off('changed', changed));
    // the lease first: a leader must never see our HA VMs owned by a host without one
    await this.liveness.start();
    for (const vm of this.d.vms.service.list())
      if (vm.config.ha.enabled) {
        await claimOwner(this.d.etcd, vm.id, this.d.hostId);
        this.claimed.add(vm.id);
      }
    this.leader.start();
    this.timer = setInterval(() => this.poke(), TICK_MS);
    this.timer.unref();
  }

  /**
   * A VM that migrated here: its HA record moves to this host (epoch + 1) before it runs here,
   * so that the leader never restarts it elsewhere as a guest of the host it left.
   */
  async arrived(vmId: string): Promise<void> {
    const vm = this.d.vms.service.get(vmId);
    if (!vm.config.ha.enabled) return;
    this.claimed.add(vmId);
    for (let tries = 0; tries < 3; tries++) {
      const seen = await readOwner(this.d.etcd, vmId);
      if (!seen) {
        if (await claimOwner(this.d.etcd, vmId, this.d.hostId)) return;
      } else if (seen.owner === this.d.hostId || (await moveOwner(this.d.etcd, vmId, seen, this.d.hostId))) return;
    }
    this.d.log(`ha: could not take over the HA record of "${vm.name}" after its migration here`);
  }

  // ---- HaCluster: what ha.status and the start check read

  readonly view = { hosts: () => this.hostViews(), vms: () => this.haVms() };

  owner(vm: string): Ownership | null {
    const id = this.d.vms.service.list().find((v) => v.name === vm || v.id === vm)?.id ?? this.configs.find((c) => c.name === vm)?.vmId;
    const o = id ? this.owners.get(id) : undefined;
    return o ? { owner: this.d.directory.nameOf(o.owner), epoch: o.epoch } : null;
  }

  pending() {
    // every host shows the moves not yet started, from the failover records
    return [...this.failovers.values()]
      .filter((f) => !settled(f) && this.owners.get(f.vmId)?.epoch === f.epoch)
      .map((f) => ({ vm: f.vm, to: this.d.directory.nameOf(f.to), epoch: f.epoch, sinceMs: stepAt(f, 'reassigned') }));
  }

  startBlocker(vmId?: string): string | null {
    const l = this.liveness.haStartBlocker();
    if (l) return l;
    if (!this.ownersFresh) return 'this host has not read the HA ownership records since it took its lease';
    const o = vmId ? this.owners.get(vmId) : undefined;
    if (o && o.owner !== this.d.hostId)
      return `it is owned by host ${this.d.directory.nameOf(o.owner)} at epoch ${o.epoch} (it failed over there)`;
    return null;
  }

  hostName(id: string): string {
    return this.d.directory.nameOf(id);
  }

  /** The failover record of one VM (for its timeline). */
  failoverOf(vmId: string): Failover | null {
    return this.failovers.get(vmId) ?? null;
  }

  // ---- the view the decisions read

  private hostViews(): HostView[] {
    const hosts = [...this.d.directory.hosts.values()].map((h) => {
      const cap = this.d.directory.alive.get(h.id);
      return {
        id: h.id,
        alive: this.alive.has(h.id),
        memMiB: cap ? Math.floor(cap.memoryBytes / 2 ** 20) : 0,
        cpus: cap?.cpus ?? 0,
        pools: this.alive.get(h.id)?.pools ?? {},
      };
    });
    return this.balancing.hostViews(hosts);
  }

  private haVms(): Array<HaVm & { id: string }> {
    const out: Array<HaVm & { id: string }> = [];
    for (const c of this.configs) {
      const o = this.owners.get(c.vmId);
      if (!c.config.ha.enabled || !o) continue;
      out.push({
        id: c.vmId,
        name: c.name,
        owner: o.owner,
        epoch: o.epoch,
        memMiB: bootMemoryMiB(c.config),
        cpus: c.config.cpus,
        ha: c.config.ha,
        pools: sharedPoolsNeeded(c.config, this.d.vms.ctx.pools),
      });
    }
    return this.balancing.vmViews(out);
  }

  // ---- the target's side and the returning host's

  private onOwner(id: string, o: Ownership | null): void {
    if (o) this.owners.set(id, o);
    else this.owners.delete(id);
    this.poke();
  }

  private aliveGone(id: string): void {
    if (!this.alive.delete(id)) return;
    this.expired.set(id, Date.now());
    void this.leader.tick();
  }

  /**
   * The HA leases and the VMs' configs as etcd has them now. The watches tell at once, but a
   * watch stream can stall (seen for minutes on a loaded machine while a member was cut off) and
   * a leader that missed a lease's end never moves that host's VMs: so the leader reads them
   * again every few seconds, and every other host its configs now and then.
   */
  private async reread(leading: boolean): Promise<void> {
    if (this.rereading) return; // one at a time: a read can hang as long as the watch did
    this.rereading = true;
    try {
      const [now] = await Promise.all([
        leading ? this.d.etcd.getAll().prefix(keys.haAlive).strings() : null,
        this.d.inventory.rereadConfigs(),
      ]);
      if (!now) return;
      const ids = new Set(Object.keys(now).map((k) => k.slice(keys.haAlive.length)));
      for (const id of [...this.alive.keys()]) if (!ids.has(id)) this.aliveGone(id);
    } finally {
      this.rereading = false;
    }
  }
  private rereading = false;

  private poke(): void {
    const t = ++this.ticks;
    if (t % 5 === 0) void this.liveness.superviseFencer().catch((err: Error) => this.d.log(`ha: fencer: ${err.message}`));
    const leading = this.leader.isLeader;
    if ((leading && t % 5 === 0) || t % REREAD_TICKS === 0)
      void this.reread(leading).catch((err: Error) => this.d.log(`ha: reading the HA leases and configs: ${err.message}`));
    this.configs = this.d.inventory.configs();
    void this.leader
      .tick()
      .then(() => this.act())
      .then(() => this.balancing.tick())
      .catch((err: Error) => this.d.log(`ha: ${err.message}`));
  }

  private ticks = 0;

  private async readOwners(): Promise<void> {
    const all = await this.d.etcd.getAll().prefix(keys.haOwners).strings();
    this.owners.clear();
    for (const [k, v] of Object.entries(all)) {
      const o = decodeOwnership(v);
      if (o) this.owners.set(k.slice(keys.haOwners.length), o);
    }
  }

  /** With a fresh lease: read who owns what before any HA start is allowed again. */
  private async resync(): Promise<void> {
    this.ownersFresh = false;
    await this.readOwners();
    this.ownersFresh = true;
  }

  /** Local records of HA VMs another host owns now: dropped once they do not run here. */
  private async dropStale(): Promise<void> {
    for (const vm of this.d.vms.service.list()) {
      const o = this.owners.get(vm.id);
      // an arrival is still its source's until the migration finishes (arrived() moves the owner)
      if (!vm.config.ha.enabled || !o || o.owner === this.d.hostId || vm.state === 'incoming') continue;
      const where = this.d.directory.nameOf(o.owner);
      if (await dropMovedHaVm(this.d.vms, vm.id, `Runs on host ${where} now (HA failover, epoch ${o.epoch}): record dropped here`))
        this.d.log(`ha: ${vm.name} failed over to ${where}: dropped its record here`);
      else this.d.log(`ha: ${vm.name} is owned by ${where} at epoch ${o.epoch} but runs here: left alone`);
    }
  }

  private async act(): Promise<void> {
    if (this.liveness.haStartBlocker() || !this.ownersFresh) return;
    await this.dropStale();
    this.takeover.act(this.failovers.values(), this.owners);
  }

  /** Guests fenced in a stall that etcd never saw as a loss: still owned here, so started again. */
  private async restartFenced(names: string[]): Promise<void> {
    // the fencer removes its record when told: wait for that, briefly
    for (let i = 0; i < 30 && this.liveness.fence; i++) await new Promise((r) => setTimeout(r, 100));
    for (const name of names) {
      const vm = this.d.vms.service.list().find((v) => v.name === name);
      if (!vm || this.d.vms.registry.has(vm.id) || this.startBlocker(vm.id)) continue;
      await this.d.vms.lifecycle
        .start(vm.id, 'Starting again: fenced in a stall, but the lease outlived it and no other host took it')
        .catch((err: Error) => this.d.log(`ha: restarting ${name} after a stall: ${err.message}`));
    }
  }

  private guards(): Guard[] {
    const { vms } = this.d;
    const out = new Map<number, Guard>();
    for (const r of vms.registry.all()) {
      const rec = vms.ctx.vms.get(r.vmId);
      if (rec?.config.ha.enabled && r.machine.pidStart)
        out.set(r.machine.pid, { vm: rec.name, pid: r.machine.pid, startTime: r.machine.pidStart });
    }
    // a QEMU still starting (spawned, its monitor not up yet) is guarded too: on a loaded host a
    // start can outlast the lease, and the VM's new owner would then find its disk in use
    for (const rec of vms.ctx.vms.list())
      if (rec.config.ha.enabled && rec.state === 'starting' && rec.pid && rec.pidStart && !out.has(rec.pid))
        out.set(rec.pid, { vm: rec.name, pid: rec.pid, startTime: rec.pidStart });
    return [...out.values()];
  }

  async close(revoke = false): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const off of this.off.splice(0)) off();
    await this.leader.close();
    await this.balancing.close();
    await Promise.all(this.watchers.splice(0).map((w) => w.cancel().catch(() => undefined)));
    await this.liveness.close(revoke);
  }
}
