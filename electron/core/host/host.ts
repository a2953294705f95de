// A Corral host: the one owner of a data dir. Takes the lock, opens the store, probes QEMU,
// reattaches to running guests and serves the API on the control socket. The desktop app
// and `corral serve` each create one and add their own transport on top.
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import type { EventName, HostInfo, HostResources, ResponseMessage, VmStats } from '../api/contract.js';
import { Cgroups } from '../resources/cgroups.js';
import { GuestLoadBook } from '../resources/guest-load.js';
import { ResourceMonitor } from '../resources/monitor.js';
import { StatsRepo } from '../store/stats-repo.js';
import { Dispatcher, Session, type AuditRecord, type SessionOptions } from '../api/dispatcher.js';
import { Accounts } from '../auth/accounts.js';
import { AccountRepo } from '../store/account-repo.js';
import { AuditRepo } from '../store/audit-repo.js';
import { accountHandlers } from './account-handlers.js';
import { haHandlers } from './ha-handlers.js';
import { HaService } from '../ha/service.js';
import { dataLayout, vmFiles, type DataLayout } from '../paths.js';
import { prepareDataDir, tightenFile, withPrivateUmask } from '../private-files.js';
import { probeQemu, type QemuCaps } from '../qemu/probe.js';
import { openDb, type Db } from '../store/db.js';
import { EventRepo } from '../store/event-repo.js';
import { BaseRepo } from '../store/base-repo.js';
import { Portable } from '../portable/index.js';
import { PoolRepo } from '../store/pool-repo.js';
import { VmRepo } from '../store/vm-repo.js';
import { SettingsRepo } from '../store/settings-repo.js';
import { DEFAULT_HEALTH, type HealthTiming } from '../supervisor/health.js';
import { Vms } from '../vms/index.js';
import { snapshotLayer, type SnapshotLayer } from '../vms/snapshot-layer.js';
import type { AutostartResult } from '../vms/boot-order.js';
import { resolveQemuUser } from '../qemu/run-as.js';
import { Pools } from '../vms/pools.js';
import { RealQemuDriver } from '../qemu/qemu-driver.js';
import type { QmpEvent } from '../qemu/qmp.js';
import { makeProbe } from '../supervisor/liveness.js';
import { MachineConsoles } from '../consoles/machine-consoles.js';
import { Terminals } from '../consoles/terminals.js';
import { TicketBook } from '../consoles/tickets.js';
import { VncProxy } from '../consoles/vnc-proxy.js';
import { peerConsoles } from './peer-consoles.js';
import { RemoteConsoles } from './remote-consoles.js';
import { listenControlSocket } from './control-socket.js';
import { makeHandlers } from './handlers.js';
import { ClusterLink } from './cluster-link.js';
import type { ExternalEtcd } from '../cluster/external-etcd.js';
import { migrationFor, type ClusterRoutes } from './migration-handlers.js';
import { acquireLock } from './lock.js';
import { VERSION } from '../version.js';

export interface HostOptions {
  dataDir: string;
  /** "desktop app" or "corral serve": shown to a second host that finds the lock taken. */
  kind: string;
  env?: NodeJS.ProcessEnv;
  nativeBinding?: string;
  log?: (line: string) => void;
  /** Hang detection timing; tests shorten it. */
  health?: Partial<HealthTiming>;
  /**
   * When autostart VMs start: at the first host start since the machine booted (default; a
   * restart of the service leaves the user's choices alone), at every host start, or never.
   */
  autostart?: 'first-since-boot' | 'always' | 'never';
  /** `corral serve --etcd`: a cluster on the user's etcd (checked by the caller). */
  etcd?: ExternalEtcd;
  /** Features on unless a setting says otherwise: the desktop app is its user's own; serve is reachable by others. */
  defaults?: { hostShell: boolean; monitor: boolean };
}

export class Host {
  private constructor(
    readonly layout: DataLayout,
    readonly db: Db,
    readonly vms: Vms,
    readonly events: EventRepo,
    readonly settings: SettingsRepo,
    readonly dispatcher: Dispatcher,
    /** Users and API tokens; transports ask it who a login or a token is. */
    readonly accounts: Accounts,
    readonly caps: QemuCaps,
    /** Bridges ticketed /vnc WebSocket upgrades to QEMU's VNC sockets; each transport routes to it. */
    readonly vncProxy: VncProxy,
    private readonly terminals: Terminals,
    private readonly monitor: ResourceMonitor,
    private readonly control: net.Server,
    private readonly unlock: () => void,
  ) {}

  static async start(opts: HostOptions): Promise<Host> {
    const env = opts.env ?? process.env;
    const layout = dataLayout(opts.dataDir);
    prepareDataDir(layout.root, path.basename(layout.db));
    const unlock = acquireLock(layout.lockFile, opts.kind);
    let db: Db | undefined;
    try {
      // SQLite gives its -wal and -shm files the mode of the database file
      for (const f of [layout.db, `${layout.db}-wal`, `${layout.db}-shm`]) tightenFile(f);
      db = withPrivateUmask(() => openDb(layout.db, { nativeBinding: opts.nativeBinding }));
      const caps = await probeQemu({ env, cacheFile: layout.probeCache });
      if (caps.warning) opts.log?.(`warning: ${caps.warning}`);
      const vms = new VmRepo(db);
      const events = new EventRepo(db);
      const settings = new SettingsRepo(db);
      const cgroups = new Cgroups();
      const cg = cgroups.init();
      if (!cg.available) opts.log?.(`note: CPU weight and cap are unavailable: ${cg.reason}`);
      const overcommit = () => settings.get().memoryOvercommit;
      const files = (id: string) => vmFiles(layout, id);
      const qemuUser = resolveQemuUser(env, (s) => opts.log?.(s));
      if (process.getuid?.() === 0 && !qemuUser) opts.log?.('warning: QEMU runs as root (CORRAL_QEMU_USER=root)');
      const driver = new RealQemuDriver({ layout, caps, qemuUser });
      const health = { ...DEFAULT_HEALTH, ...(opts.health ?? healthFromEnv(env)) };
      const pools = new Pools(new PoolRepo(db), { root: layout.root, images: layout.imagesDir, vmsDir: layout.vmsDir });
      const vmLayer = new Vms({
        vms,
        events,
        driver,
        env,
        health,
        cgroups,
        overcommit,
        vmDir: (id) => files(id).dir,
        pools,
        bases: new BaseRepo(db),
        probes: (liveness, forwards, id) => makeProbe(liveness, forwards, files(id).qgaSocket, health.livenessTimeoutMs),
      });
      await vmLayer.reattachAll();
      const snaps = snapshotLayer(vmLayer, db, (id) => files(id).qgaSocket);
      snaps.scheduler.start();
      // the cluster link (made below) lends migrations its peers and certificates
      let clusterRoutes: () => ClusterRoutes | null = () => null;
      const stats = new StatsRepo(db);
      const migration = migrationFor(vmLayer, layout.root, stats, () => clusterRoutes());
      await migration.dropLeftovers();
      const autostarted = autostartIfDue(vmLayer, settings, opts.autostart ?? 'first-since-boot', opts.log);
      const consoles = new MachineConsoles(vmLayer.registry, driver);
      const tickets = new TicketBook();
      const terminals = new Terminals();
      // consoles of other hosts' VMs (a cluster) are relayed; made once the cluster link is
      let remoteConsoles: RemoteConsoles | null = null;
      const vncProxy = new VncProxy({
        tickets,
        socketOf: (id) => consoles.displaySocket(id),
        relayOf: (id) => remoteConsoles?.relayOf(id) ?? null,
      });
      const defaults = opts.defaults ?? { hostShell: false, monitor: false };
      let consoleBase: string | null = null;
      const info = (): HostInfo => ({
        version: VERSION,
        dataDir: layout.root,
        pid: process.pid,
        qemu: { binary: caps.binary, version: caps.version, accel: caps.accel, warning: caps.warning, runsAs: qemuUser?.name ?? null },
        settings: settings.get(),
        features: {
          hostShell: settings.get().hostShell ?? defaults.hostShell,
          monitor: settings.get().monitor ?? defaults.monitor,
        },
      });
      const subscribers = new Set<(at: number, vms: VmStats[], host: HostResources) => void>();
      const running = {
        running: () =>
          vmLayer.registry.all().map((r) => ({
            vmId: r.vmId,
            pid: r.machine.pid,
            qmp: r.machine.qmp,
            onEvent: (fn: (ev: QmpEvent) => void) => r.machine.onEvent(fn),
            nics: vmLayer.ctx.vms.get(r.vmId)?.applied?.nics,
          })),
        committedBytes: () => vmLayer.lifecycle.committedBytes(),
      };
      const monitor = new ResourceMonitor(running, stats, cgroups, overcommit, (at, vmStats, hostRes) =>
        subscribers.forEach((fn) => fn(at, vmStats, hostRes)),
      );
      monitor.start();
      const accounts = new Accounts(new AccountRepo(db));
      const audit = new AuditRepo(db);
      const record = (r: AuditRecord) =>
        audit.add({
          at: Date.now(),
          who: r.identity.user ?? 'owner',
          method: r.method,
          target: r.target,
          address: r.address,
          ok: !r.error,
          error: r.error?.message ?? null,
        });
      // HA: without a cluster only a fence the fencer left matters (it blocks HA starts)
      const ha = new HaService({
        vms: () => vmLayer.service.list().map((v) => ({ name: v.name, state: v.state, config: v.config })),
        fencerDir: path.join(layout.root, 'ha'),
        balanceFlag: { get: () => settings.haBalance(), set: (on) => settings.setHaBalance(on) },
        now: () => Date.now(),
        fenceReported: { get: () => settings.haFenceReported(), set: (at) => settings.setHaFenceReported(at) },
        onFenced: (ref, rec) => {
          const vm = vmLayer.ctx.vms.find(ref);
          if (!vm) return;
          const why = 'its host could not renew its cluster lease in time, so the fencer killed it before another host may start it';
          vmLayer.journal.error(vm, `Fenced at ${new Date(rec.at).toISOString()}: ${why}`);
          vmLayer.journal.notify(vm, 'error', 'HA guest fenced', `"${vm.name}" was stopped: ${why}.`);
        },
      });
      vmLayer.ctx.haStartBlocker = (id) => ha.startBlocker(id);
      ha.watch();
      // another host of the cluster calls as an admin, audited under its name
      // what the guests use, published with this host's room for the HA leader's load balancing
      const guestLoad = new GuestLoadBook();
      subscribers.add((_at, vmStats) => guestLoad.add(vmStats));
      const cluster = new ClusterLink({
        dataDir: layout.root,
        vms: vmLayer,
        ha,
        guestLoad: () => guestLoad.now(vmLayer.registry.all().map((r) => r.vmId)),
        log: (l) => opts.log?.(l),
        externalEtcd: opts.etcd,
        openStream: peerConsoles({ vms: vmLayer, consoles, dispatcher: () => dispatcher }),
        relayConsoles: (h) => remoteConsoles!.wrap(h),
        migrationProgress: (fn) => migration.onProgress(fn),
        dispatch: (name, address, method, args): Promise<ResponseMessage> =>
          dispatcher.handle(
            new Session('peer', () => undefined, undefined, { identity: { kind: 'host', user: `host:${name}`, role: 'admin' }, address }),
            { id: 1, method, args },
          ),
      });
      remoteConsoles = new RemoteConsoles({
        cluster: () => cluster.cluster,
        isLocal: (ref) => vmLayer.ctx.vms.find(ref) !== undefined,
        tickets,
        consoleBase: () => consoleBase,
      });
      const dispatcher: Dispatcher = new Dispatcher(
        cluster.wrap(
          makeHandlers({
            accountHandlers: accountHandlers(accounts, audit),
            migration,
            haHandlers: haHandlers(ha, vmLayer),
            vms: vmLayer,
            snapshots: snaps,
            portable: new Portable(vmLayer.ctx, snaps.repo),
            consoles,
            vmDir: (id) => files(id).dir,
            serialLog: (id) => files(id).serialLog,
            agentSocket: (id) => files(id).qgaSocket,
            events,
            settings,
            info,
            tickets,
            terminals,
            monitor,
            onStats: (fn) => subscribers.add(fn),
            consoleBase: () => consoleBase,
          }),
        ),
        record,
      );
      clusterRoutes = () => cluster.routes();
      cluster.resume();
      const control = await listenControlSocket(layout.controlSocket, dispatcher);
      const host = new Host(
        layout,
        db,
        vmLayer,
        events,
        settings,
        dispatcher,
        accounts,
        caps,
        vncProxy,
        terminals,
        monitor,
        control,
        unlock,
      );
      host.setConsoleBase = (base) => (consoleBase = base);
      host.snapshots = snaps;
      host.audit = record;
      host.autostarted = autostarted;
      host.cluster = cluster;
      host.ha = ha;
      return host;
    } catch (err) {
      db?.close();
      unlock();
      throw err;
    }
  }

  /** Writes to the audit log what a transport changes outside the dispatcher (uploads). */
  audit: (rec: AuditRecord) => void = () => undefined;
  /** The cluster this host is in, if any (its layer is loaded only then). */
  cluster: ClusterLink | null = null;
  /** Settles when the autostart VMs have started (or failed); null when none were due at this start. */
  autostarted: Promise<AutostartResult> | null = null;

  /** Snapshots and their schedules. */
  snapshots: SnapshotLayer | null = null;
  /** High availability on this host (core/ha); the cluster layer plugs itself in here. */
  ha: HaService | null = null;

  /** Where the desktop app serves console WebSockets (serve uses the page's own origin). */
  setConsoleBase: (base: string | null) => void = () => undefined;

  /** A connection of some transport; close it when the peer goes away. */
  session(label: string, sink: (event: EventName, payload: unknown) => void, backlog?: () => number, opts?: SessionOptions): Session {
    return new Session(label, sink, backlog, opts);
  }

  /**
   * Leaves guests running (they are detached) unless stopGuests is set: then they stop in
   * reverse autostart order, each within its stop timeout (or timeoutSec).
   */
  async close(opts: { stopGuests?: boolean; timeoutSec?: number } = {}): Promise<void> {
    this.snapshots?.scheduler.stop();
    if (opts.stopGuests) await this.vms.lifecycle.stopAll(opts.timeoutSec);
    this.terminals.closeAll();
    this.monitor.stop();
    this.ha?.stop();
    this.vncProxy.close();
    this.vms.detachAll();
    await this.cluster?.close().catch(() => undefined);
    await new Promise<void>((resolve) => this.control.close(() => resolve()));
    this.db.close();
    this.unlock();
  }
}

/** The kernel's id of this machine boot; null where it cannot be read (then every host start counts as a boot). */
function bootId(): string | null {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** Starts the autostart VMs in the background when this host start is due to (see HostOptions.autostart). */
function autostartIfDue(
  vms: Vms,
  settings: SettingsRepo,
  when: NonNullable<HostOptions['autostart']>,
  log?: (line: string) => void,
): Promise<AutostartResult> | null {
  if (when === 'never') return null;
  const boot = bootId();
  if (when === 'first-since-boot' && boot && settings.autostartBoot() === boot) return null;
  if (boot) settings.setAutostartBoot(boot);
  return vms.autostart().then((r) => {
    if (r.started.length || r.failed.length)
      log?.(`autostart: started ${r.started.length}${r.failed.length ? `, failed: ${r.failed.join(', ')}` : ''}`);
    return r;
  });
}

/** CORRAL_QMP_CHECK_MS / CORRAL_QMP_TIMEOUT_MS tune hang detection (e.g. for tests of `corral serve`). */
function healthFromEnv(env: NodeJS.ProcessEnv): Partial<HealthTiming> {
  const out: Partial<HealthTiming> = {};
  const n = (v: string | undefined) => (v && /^\d+$/.test(v) ? Number(v) : undefined);
  const interval = n(env.CORRAL_QMP_CHECK_MS);
  const timeout = n(env.CORRAL_QMP_TIMEOUT_MS);
  if (interval) out.qmpIntervalMs = interval;
  if (timeout) out.qmpTimeoutMs = timeout;
  return out;
}
