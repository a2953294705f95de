// Where a host meets the cluster layer. A single host never loads it: the cluster module is
// imported only when the data dir has a cluster config (at start) or on cluster.init/join. The
// handlers are wrapped so that vm.list shows every host's VMs and an action on another host's
// VM is carried out by that host, over the mutual-TLS peer API.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CorralError, type Handlers, type Session } from '../api/dispatcher.js';
import type { Args, MethodName, ResponseMessage, VmInfo } from '../api/contract.js';
import type { ClusterStatus } from '../api/cluster-schemas.js';
import type { Cluster, ClusterVm } from '../cluster/index.js';
import type { HaService } from '../ha/service.js';
import type { Vms } from '../vms/index.js';
import type { ClusterMethod } from './handlers.js';

export interface ClusterLinkDeps {
  dataDir: string;
  vms: Vms;
  dispatch: (hostName: string, address: string | null, method: string, args: unknown) => Promise<ResponseMessage>;
  log: (line: string) => void;
  /** HA on this host: the cluster plugs its HA side in (and holds HA starts while it starts). */
  ha?: HaService | null;
}

/** Until the cluster is up, an HA guest may be running elsewhere: no HA start. */
const haWaiting = (why: () => string) => ({
  view: { hosts: () => [], vms: () => [] },
  owner: () => null,
  pending: () => [],
  startBlocker: why,
});

const SINGLE: ClusterStatus = { clustered: false, clusterId: null, self: null, hosts: [], members: [], leader: null, problem: null };

/** Methods naming one VM: carried out by the host that has it. */
const VM_METHODS = [
  'vm.get',
  'vm.stats',
  'vm.resizeDisk',
  'vm.update',
  'vm.start',
  'vm.stop',
  'vm.kill',
  'vm.reset',
  'vm.pause',
  'vm.resume',
  'vm.delete',
  'vm.screenshot',
  'events.list',
  'monitor.exec',
  'serial.log',
] as const satisfies readonly MethodName[];

export class ClusterLink {
  cluster: Cluster | null = null;
  private starting: Promise<void> | null = null;
  private problem: string | null = null;
  private readonly watchers = new Set<Session>();

  constructor(private readonly d: ClusterLinkDeps) {}

  /** At host start: take up the cluster this data dir is in, in the background (etcd may wait for its peers). */
  resume(): void {
    if (!fs.existsSync(path.join(this.d.dataDir, 'cluster', 'cluster.json'))) return;
    this.d.ha?.setCluster(haWaiting(() => this.problem ?? 'the cluster is still starting: HA guests start once this host holds its lease'));
    this.starting = (async () => {
      const { resumeCluster } = await import('../cluster/index.js');
      this.attach(await resumeCluster(this.clusterDeps()));
    })()
      .catch((err: Error) => {
        this.problem = `the cluster did not start: ${err.message}`;
        this.d.log(`cluster: ${this.problem}`);
      })
      .finally(() => (this.starting = null));
  }

  private clusterDeps() {
    const { vms } = this.d;
    return {
      dataDir: this.d.dataDir,
      vms,
      dispatch: this.d.dispatch,
      log: this.d.log,
      capacity: () => ({
        cpus: os.cpus().length,
        memoryBytes: os.totalmem(),
        committedBytes: vms.lifecycle.committedBytes(),
        vms: vms.service.list().length,
        running: vms.registry.all().length,
      }),
    };
  }

  private attach(c: Cluster | null): void {
    this.cluster = c;
    if (!c) return;
    this.problem = null;
    this.d.ha?.setCluster(c.ha);
    c.inventory.on('changed', (vm) => this.watchers.forEach((s) => s.send('vm.changed', vm)));
    c.inventory.on('removed', (vm) => this.watchers.forEach((s) => s.send('vm.removed', vm)));
  }

  private async busy(): Promise<void> {
    if (this.starting) await this.starting;
    if (this.cluster) throw new CorralError('conflict', 'this host is already in a cluster (corral cluster leave first)');
  }

  private need(): Cluster {
    if (this.cluster) return this.cluster;
    throw new CorralError('conflict', this.problem ?? (this.starting ? 'the cluster is still starting' : 'this host is not in a cluster'));
  }

  /** This host's VM (by id or name), or null. */
  private local(ref: string): VmInfo | null {
    try {
      return this.d.vms.service.get(ref);
    } catch {
      return null;
    }
  }

  private decorate(vm: VmInfo): VmInfo {
    const c = this.cluster;
    return c ? ({ ...vm, host: { id: c.config.hostId, name: c.config.name, reporting: true } } as ClusterVm) : vm;
  }

  /** The handlers with the cluster's: forwarding, the inventory in vm.list, and cluster.*. */
  wrap(base: Omit<Handlers, ClusterMethod>): Handlers {
    const h = { ...base } as Handlers;
    for (const m of VM_METHODS) {
      const own = base[m] as (a: { vm: string }, s: Session) => unknown;
      (h as Record<string, unknown>)[m] = async (a: { vm: string }, s: Session) => {
        const c = this.cluster;
        // a call another host forwarded is never forwarded again (no loops on a stale inventory)
        if (c && a.vm && s.identity.kind !== 'host' && !this.local(a.vm)) {
          const there = c.inventory.find(a.vm);
          if (there) {
            if (!there.host.reporting)
              throw new CorralError('conflict', `"${there.name}" is on host "${there.host.name}", which is not reporting`);
            return await c.peers.call(there.host.id, m, a);
          }
        }
        return await own(a, s);
      };
    }
    h['vm.list'] = async (a, s) => {
      const mine = (await base['vm.list'](a, s)).map((vm) => this.decorate(vm));
      return this.cluster ? [...mine, ...this.cluster.inventory.others()] : mine;
    };
    h['vm.create'] = async (a, s) => {
      const c = this.cluster;
      if (!c) return await base['vm.create'](a, s);
      const claim = `pending-${c.config.hostId}-${Date.now()}`;
      if (!(await c.inventory.claimName(a.name, claim)))
        throw new CorralError('conflict', `a VM named "${a.name}" already exists in the cluster`, 'name');
      try {
        const vm = await base['vm.create'](a, s);
        await c.inventory.claimAs(a.name, claim, vm.id);
        return vm;
      } catch (err) {
        await c.inventory.releaseName(a.name, claim).catch(() => undefined);
        throw err;
      }
    };
    const update = h['vm.update'];
    h['vm.update'] = async (a: Args<'vm.update'>, s) => {
      const c = this.cluster;
      const vm = this.local(a.vm);
      if (!c || !vm || !a.name || a.name === vm.name) return await update(a, s);
      if (!(await c.inventory.claimName(a.name, vm.id)))
        throw new CorralError('conflict', `a VM named "${a.name}" already exists in the cluster`, 'name');
      try {
        const r = await update(a, s);
        await c.inventory.releaseName(vm.name, vm.id);
        return r;
      } catch (err) {
        await c.inventory.releaseName(a.name, vm.id).catch(() => undefined);
        throw err;
      }
    };
    h['events.subscribe'] = async (a, s) => {
      const r = await base['events.subscribe'](a, s);
      this.watchers.add(s);
      s.onClose(() => this.watchers.delete(s));
      return r;
    };
    h['cluster.status'] = async () => (this.cluster ? await this.cluster.status() : { ...SINGLE, problem: this.problem });
    h['cluster.init'] = async (a) => {
      await this.busy();
      const { initCluster } = await import('../cluster/index.js');
      const c = await initCluster(this.clusterDeps(), a);
      this.attach(c);
      return await c.newToken();
    };
    h['cluster.join'] = async (a) => {
      await this.busy();
      const { joinCluster } = await import('../cluster/index.js');
      this.attach(await joinCluster(this.clusterDeps(), a));
      return await this.need().status();
    };
    h['cluster.token'] = async (a) => await this.need().newToken(a.ttlSec);
    h['cluster.leave'] = async () => {
      const c = this.need();
      await c.leave();
      this.cluster = null;
      this.d.ha?.setCluster(null);
      return { ok: true as const };
    };
    return h;
  }

  async close(): Promise<void> {
    if (this.starting) await this.starting;
    await this.cluster?.close();
    this.cluster = null;
  }
}
