// The VM layer, assembled: the store's VMs, their lifecycle and their supervision. A host
// builds it once; tests build it with a fake QEMU driver and a fake clock.
import { imageSizeFast } from '../qemu/img.js';
import type { QemuDriver } from '../qemu/driver.js';
import { realClock, type Clock } from '../clock.js';
import type { Cgroups } from '../resources/cgroups.js';
import { readHostMemory } from '../resources/host-capacity.js';
import type { BaseRepo } from '../store/base-repo.js';
import type { EventRepo } from '../store/event-repo.js';
import { publicInfo, type VmRecord, type VmRepo } from '../store/vm-repo.js';
import { DEFAULT_HEALTH, type HealthTiming } from '../supervisor/health.js';
import type { ProbeFactory, VmContext } from './context.js';
import { Journal } from './journal.js';
import { Lifecycle } from './lifecycle.js';
import type { Pools } from './pools.js';
import { KeyedLock } from './locks.js';
import { PoolService } from './pool-service.js';
import { reattachAll } from './reattach.js';
import { autostartAll, type AutostartResult } from './boot-order.js';
import { Registry } from './registry.js';
import { Supervisor } from './supervisor.js';
import { VmService } from './vm-service.js';
import { ShareService } from './share-service.js';

export interface VmsDeps {
  vms: VmRepo;
  events: EventRepo;
  driver: QemuDriver;
  probes: ProbeFactory;
  vmDir: (vmId: string) => string;
  pools: Pools;
  bases?: BaseRepo;
  clock?: Clock;
  random?: () => number;
  health?: Partial<HealthTiming>;
  cgroups?: Cgroups | null;
  overcommit?: () => number;
  hostMemoryBytes?: () => number;
  env?: NodeJS.ProcessEnv;
}

export class Vms {
  readonly ctx: VmContext;
  readonly journal: Journal;
  readonly registry: Registry;
  readonly supervisor: Supervisor;
  readonly service: VmService;
  readonly lifecycle: Lifecycle;
  readonly pools: PoolService;
  readonly shares: ShareService;
  /** The event log (a moved VM's history is written to it directly). */
  readonly events: EventRepo;

  constructor(d: VmsDeps) {
    this.events = d.events;
    const clock = d.clock ?? realClock;
    const describe = (rec: VmRecord) =>
      publicInfo(
        rec,
        rec.config.disks.map((disk) => imageSizeFast(disk.path, disk.format)),
      );
    this.journal = new Journal(d.vms, d.events, clock, describe);
    this.registry = new Registry();
    this.ctx = {
      vms: d.vms,
      journal: this.journal,
      registry: this.registry,
      locks: new KeyedLock(),
      driver: d.driver,
      clock,
      random: d.random ?? Math.random,
      health: { ...DEFAULT_HEALTH, ...d.health },
      probes: d.probes,
      cgroups: d.cgroups ?? null,
      overcommit: d.overcommit ?? (() => 1),
      hostMemoryBytes: d.hostMemoryBytes ?? (() => readHostMemory().totalBytes),
      env: d.env ?? process.env,
      vmDir: d.vmDir,
      pools: d.pools,
      bases: d.bases ?? null,
      describe,
    };
    this.supervisor = new Supervisor(this.ctx);
    this.lifecycle = new Lifecycle(this.ctx, this.supervisor);
    this.service = new VmService(this.ctx, this.supervisor);
    this.pools = new PoolService(this.ctx);
    this.shares = new ShareService(this.ctx, this.service);
  }

  /** At host start: watch the guests a previous host left, settle the dead, resume pending restarts. */
  reattachAll(): Promise<void> {
    return reattachAll(this.ctx, this.supervisor);
  }

  /** At the first host start since the machine booted: the autostart VMs, in order (after reattachAll). */
  autostart(): Promise<AutostartResult> {
    return autostartAll(
      this.ctx,
      (rec) => this.lifecycle.start(rec.id, `Starting at boot (autostart order ${rec.config.autostartOrder})`),
      () => this.supervisor.closing || this.lifecycle.stoppingAll,
    );
  }

  /** The host is leaving and the guests stay: stop watching them. */
  detachAll(): void {
    this.supervisor.detachAll();
  }
}
