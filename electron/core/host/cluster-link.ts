// Where a host meets the cluster layer. A single host never loads it: the cluster module is
// imported only when the data dir has a cluster config (at start) or on cluster.init/join. The
// handlers are wrapped so that vm.list shows every host's VMs and an action on another host's
// VM is carried out by that host, over the mutual-TLS peer API.
import fs from 'node:fs';
import path from 'node:path';
import { CorralError, type Handlers, type Session } from '../api/dispatcher.js';
import type {
  Args,
  ArgsIn,
  EvacuationProgress,
  EventMap,
  EventName,
  MethodName,
  MigrationProgress,
  ResponseMessage,
  Result,
  VmInfo,
} from '../api/contract.js';
import type { ClusterStatus } from '../api/cluster-schemas.js';
import type { Cluster, ClusterVm, PeerStreamOpen } from '../cluster/index.js';
import type { ExternalEtcd } from '../cluster/external-etcd.js';
import type { HaService } from '../ha/service.js';
import type { Vms } from '../vms/index.js';
import type { GuestLoad } from '../resources/guest-load.js';
import { HostCpu, admit, hostCpuCount, readHostMemory } from '../resources/host-capacity.js';
import type { ClusterMethod } from './handlers.js';
import { FORWARDED } from './forwarded-methods.js';
import type { ClusterRoutes } from './migration-handlers.js';
import { methods } from '../api/contract.js';
import { Evacuation } from './evacuation.js';

export interface ClusterLinkDeps {
  dataDir: string;
  vms: Vms;
  dispatch: (hostName: string, address: string | null, method: string, args: unknown) => Promise<ResponseMessage>;
  log: (line: string) => void;
  /** `corral serve --etcd`: the user's etcd, used as a client by init, join and resume. */
  externalEtcd?: ExternalEtcd;
  /** HA on this host: the cluster plugs its HA side in (and holds HA starts while it starts). */
  ha?: HaService | null;
  /** What this host's guests use now (published for the HA leader's load balancing). */
  guestLoad?: () => GuestLoad;
  /** Consoles of this host's VMs for another host (host/peer-consoles.ts). */
  openStream?: PeerStreamOpen;
  /** Wraps the handlers so consoles of other hosts' VMs open here (host/remote-consoles.ts). */
  relayConsoles?: (h: Handlers) => Handlers;
  /** This host's outgoing migrations' progress: shared so that every host's UI can follow them. */
  migrationProgress?: (fn: (p: MigrationProgress) => void) => void;
}

/** How often a migration's figures go to the other hosts (phase changes go at once). */
const SHARE_MIGRATION_MS = 1000;

/** Until the cluster is up, an HA guest may be running elsewhere: no HA start. */
const haWaiting = (why: () => string) => ({
  view: { hosts: () => [], vms: () => [] },
  owner: () => null,
  pending: () => [],
  startBlocker: why,
});

const SINGLE: ClusterStatus = { clustered: false, clusterId: null, self: null, hosts: [], members: [], leader: null, problem: null };

export class ClusterLink {
  cluster: Cluster | null = null;
  private starting: Promise<void> | null = null;
  private problem: string | null = null;
  private readonly watchers = new Set<Session>();
  private readonly cpu = new HostCpu();

  /** When each moving VM's figures last went to the other hosts, and in which phase. */
  private readonly shared = new Map<string, { at: number; phase: MigrationProgress['phase'] }>();

  constructor(private readonly d: ClusterLinkDeps) {
    d.migrationProgress?.((p) => this.shareMigration(p));
  }

  /** A step of a migration this host sends away, for the other hosts (at most about once a second). */
  private shareMigration(p: MigrationProgress): void {
    const c = this.cluster;
    if (!c) return;
    const last = this.shared.get(p.vmId);
    const now = Date.now();
    if (last && last.phase === p.phase && now - last.at < SHARE_MIGRATION_MS) return;
    if (p.phase === 'done' || p.phase === 'failed') this.shared.delete(p.vmId);
    else this.shared.set(p.vmId, { at: now, phase: p.phase });
    c.migrations.publish(p);
  }

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
      externalEtcd: this.d.externalEtcd,
      openStream: this.d.openStream,
      capacity: () => ({
        cpus: hostCpuCount(),
        memoryBytes: vms.ctx.hostMemoryBytes(),
        committedBytes: vms.lifecycle.committedBytes(),
        vms: vms.service.list().length,
        running: vms.registry.all().length,
        overcommit: vms.ctx.overcommit(),
        availableBytes: readHostMemory().availableBytes,
        cpuPercent: Math.round(this.cpu.sample()),
        load: this.d.guestLoad?.(),
      }),
    };
  }

  private attach(c: Cluster | null): void {
    this.cluster = c;
    if (!c) return;
    this.problem = null;
    this.d.ha?.setCluster(c.ha);
    // a VM moving away is this host's until it has left: the target's "incoming" entry would
    // stand in for the guest still running here (same id)
    c.inventory.on('changed', (vm) => {
      if (vm.host.id !== c.config.hostId && this.local(vm.id)) return;
      this.watchers.forEach((s) => s.send('vm.changed', vm));
    });
    c.inventory.on('removed', (vm) => this.watchers.forEach((s) => s.send('vm.removed', vm)));
    c.evacuations.on((p) => this.broadcast('host.evacuation', p));
    c.migrations.on((p) => this.broadcast('migration.progress', p));
    // …and once it has left, its entry on the new host follows the local removal (the
    // inventory may have heard of it first, while it was held back above)
    this.d.vms.journal.on('removed', ({ id }: { id: string }) => {
      const there = this.cluster?.inventory.find(id);
      if (there && there.host.id !== this.cluster?.config.hostId) this.watchers.forEach((s) => s.send('vm.changed', there));
    });
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
    for (const m of FORWARDED) {
      const own = (base as Record<string, unknown>)[m] as (a: { vm: string }, s: Session) => unknown;
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
      if (!this.cluster) return mine;
      // a VM that just moved here may still be listed under its old host for a moment
      const here = new Set(mine.map((vm) => vm.id));
      return [...mine, ...this.cluster.inventory.others().filter((vm) => !here.has(vm.id))];
    };
    h['vm.create'] = async ({ host, ...a }, s) => {
      const c = this.cluster;
      // a host in maintenance makes no VM, whether asked here or placed here by another host
      const make = async (args: typeof a) => {
        if (c) this.refuseInMaintenance(c, `"${args.name}" cannot be created here`);
        return await base['vm.create'](args, s);
      };
      if (!c) {
        if (host !== undefined) throw new CorralError('invalid-argument', 'this host is not in a cluster: leave out the host', 'host');
        return await make(a);
      }
      const { createHere, createPlaced } = await import('../cluster/create.js');
      // a creation another host placed here is made here: never placed again
      return s.identity.kind === 'host' ? await createHere(c, a, make) : await createPlaced(c, a, { host, make, admit });
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
    h['migration.prepareIncoming'] = async (a, s) => {
      if (this.cluster) this.refuseInMaintenance(this.cluster, `"${a.name}" cannot move here`);
      return await base['migration.prepareIncoming'](a, s);
    };
    h['migration.finishIncoming'] = async (a, s) => {
      // an HA guest is this host's before it runs here (the source's QEMU has stopped by now)
      await this.cluster?.ha.arrived(a.vm).catch((err: Error) => this.d.log(`ha: ${err.message}`));
      const r = await base['migration.finishIncoming'](a, s);
      await this.cluster?.inventory.publishArrival(r.id);
      return r;
    };
    const onHost = async <M extends 'host.evacuate' | 'host.restore'>(
      m: M,
      a: Args<M>,
      s: Session,
      run: (e: Evacuation) => Promise<Result<M>>,
    ) => {
      const c = this.need();
      const target = c.directory.byName(a.host);
      if (!target) throw new CorralError('not-found', `there is no host "${a.host}" in the cluster`, 'host');
      if (target.id !== c.config.hostId) return await c.peers.call(target.id, m, a);
      const local = <N extends MethodName>(n: N, args: ArgsIn<N>) =>
        (h[n] as (x: unknown, s: Session) => Promise<Result<N>>)(methods[n].args.parse(args), s);
      const progress = (p: EvacuationProgress) => {
        this.broadcast('host.evacuation', p);
        c.evacuations.publish(p);
      };
      return await run(new Evacuation({ cluster: c, vms: this.d.vms, local, progress }));
    };
    h['host.evacuate'] = (a, s) => onHost('host.evacuate', a, s, (e) => e.evacuate());
    h['host.restore'] = (a, s) => onHost('host.restore', a, s, (e) => e.restore(a.bringBack));
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
    return this.d.relayConsoles?.(h) ?? h;
  }

  /** A host in maintenance takes no VMs: refused with what to do. */
  private refuseInMaintenance(c: Cluster, what: string): void {
    if (c.maintenance.of(c.config.hostId))
      throw new CorralError(
        'conflict',
        `${what}: host "${c.config.name}" is in maintenance (evacuated) and takes no VMs until corral host restore ${c.config.name}`,
      );
  }

  private broadcast<E extends EventName>(event: E, data: EventMap[E]): void {
    this.watchers.forEach((s) => s.send(event, data));
  }

  /** What a migration to another host of the cluster needs: its peer by name, and this host's certificate. */
  routes(): ClusterRoutes | null {
    const c = this.cluster;
    if (!c) return null;
    return {
      creds: { ca: c.certs.ca, cert: c.certs.cert, key: c.certs.key },
      peerFor: (name) => {
        const h = c.directory.byName(name);
        if (!h) {
          const names = [...c.directory.hosts.values()].map((x) => x.name).join(', ');
          throw new CorralError('not-found', `there is no host "${name}" in the cluster (hosts: ${names})`, 'to');
        }
        if (h.id === c.config.hostId) throw new CorralError('conflict', `the VM is on host "${h.name}" already`, 'to');
        if (!c.directory.alive.has(h.id))
          throw new CorralError('conflict', `host "${h.name}" is not reporting: it cannot take a VM now`, 'to');
        return { address: h.address, call: (m, a) => c.peers.call(h.id, m, a), close: () => undefined };
      },
      hosts: () =>
        [...c.directory.hosts.values()].map((h) => {
          const alive = c.directory.alive.get(h.id);
          return {
            name: h.name,
            self: h.id === c.config.hostId,
            reporting: !!alive,
            maintenance: c.maintenance.of(h.id) !== null,
            roomBytes: alive ? Math.floor(alive.memoryBytes * (alive.overcommit ?? 1)) - alive.committedBytes : null,
            peer: () => ({ address: h.address, call: (m, a) => c.peers.call(h.id, m, a), close: () => undefined }),
          };
        }),
    };
  }

  async close(): Promise<void> {
    if (this.starting) await this.starting;
    await this.cluster?.close();
    this.cluster = null;
  }
}
