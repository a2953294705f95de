// What the VM modules share: the store, the journal, the running VMs, the QEMU driver, time,
// and the host's settings. Built once per host (vms/index.ts); tests build it with fakes.
import type { Liveness, PortForward, VmInfo } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import type { Clock } from '../clock.js';
import type { QemuDriver } from '../qemu/driver.js';
import type { Cgroups } from '../resources/cgroups.js';
import type { BaseRepo } from '../store/base-repo.js';
import type { VmRecord, VmRepo } from '../store/vm-repo.js';
import type { HealthTiming } from '../supervisor/health.js';
import type { Probe } from '../supervisor/liveness.js';
import type { Journal } from './journal.js';
import type { Pools } from './pools.js';
import type { KeyedLock } from './locks.js';
import type { Registry } from './registry.js';

/**
 * Makes a VM's liveness probe against the forwards its QEMU runs with (throws when they do not
 * reach the probed port).
 */
export type ProbeFactory = (liveness: Liveness, forwards: PortForward[], vmId: string) => Probe;

export interface VmContext {
  vms: VmRepo;
  journal: Journal;
  registry: Registry;
  locks: KeyedLock;
  driver: QemuDriver;
  clock: Clock;
  random: () => number;
  health: HealthTiming;
  probes: ProbeFactory;
  /** cgroup v2 CPU weight and cap, where the host delegates them. */
  cgroups: Cgroups | null;
  /** Memory overcommit ratio for admission (a host setting). */
  overcommit: () => number;
  /** The host's RAM in bytes, for admission. */
  hostMemoryBytes: () => number;
  /** For qemu-img. */
  env: NodeJS.ProcessEnv;
  /** Where a VM's own files go (logs; disks created before pools). */
  vmDir: (vmId: string) => string;
  /** The directories VM files may come from. */
  pools: Pools;
  /** Managed bases of linked clones (null: a host without them, as in the scenario tests). */
  bases: BaseRepo | null;
  /** The public view of a VM. */
  describe: (rec: VmRecord) => VmInfo;
  /** Why an HA VM may not start on this host now (core/ha: fenced, no lease), set by the host; unset: it may. */
  haStartBlocker?: (vmId: string) => string | null;
}

/** The VM named by id or name, or a not-found error. */
export function recordOf(ctx: Pick<VmContext, 'vms'>, ref: string): VmRecord {
  const rec = ctx.vms.find(ref);
  if (!rec) throw new CorralError('not-found', `no VM named "${ref}"`, 'vm');
  return rec;
}

export function formatDelay(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${Math.round(ms / 100) / 10} s`;
  return `${Math.round(ms / 60_000)} min`;
}
