// What the VM modules share: the store, the journal, the running VMs, the QEMU driver, time,
// and the host's settings. Built once per host (vms/index.ts); tests build it with fakes.
import type { VmConfig, VmInfo } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import type { Clock } from '../clock.js';
import type { QemuDriver } from '../qemu/driver.js';
import type { Cgroups } from '../resources/cgroups.js';
import type { VmRecord, VmRepo } from '../store/vm-repo.js';
import type { HealthTiming } from '../supervisor/health.js';
import type { Probe } from '../supervisor/liveness.js';
import type { Journal } from './journal.js';
import type { KeyedLock } from './locks.js';
import type { Registry } from './registry.js';

/** Makes the liveness probe of a VM's config (throws when the config cannot be probed). */
export type ProbeFactory = (config: VmConfig, vmId: string) => Probe;

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
  /** Where a VM's own files go (created disks). */
  vmDir: (vmId: string) => string;
  /** The public view of a VM. */
  describe: (rec: VmRecord) => VmInfo;
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
