// An HA VM must be startable on another host: every disk and boot file on a pool all hosts
// reach at the same path (`corral pool add NAME PATH --shared`, an NFS mount, say). Pools are
// cluster-wide names: a host runs an HA VM only if it has each of its shared pools under the
// same name and path (sharedPoolsNeeded, checked by the HA placement).
import type { VmConfig } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import type { Pools } from './pools.js';

/** Whether other hosts reach this pool at the same path. */
export type IsSharedPool = (pool: string) => boolean;

/** The shared pools (name → path) a VM's files lie in: a host must have each to run it. */
export function sharedPoolsNeeded(
  c: Pick<VmConfig, 'disks' | 'iso' | 'kernel' | 'initrd'>,
  pools: Pick<Pools, 'poolOf' | 'shared'>,
): Record<string, string> {
  const shared = pools.shared();
  const need: Record<string, string> = {};
  for (const file of filesOf(c)) {
    const pool = pools.poolOf(file);
    if (pool && pool in shared) need[pool] = shared[pool]!;
  }
  return need;
}

function filesOf(c: Pick<VmConfig, 'disks' | 'iso' | 'kernel' | 'initrd'>): string[] {
  return [...c.disks.map((d) => d.path), c.iso, c.kernel, c.initrd].filter((f): f is string => !!f);
}

/** Refuses HA on a VM with a disk, ISO, kernel or initrd outside a shared pool, naming the file. */
export function checkHaStorage(
  c: Pick<VmConfig, 'ha' | 'disks' | 'iso' | 'kernel' | 'initrd'>,
  pools: Pick<Pools, 'poolOf'>,
  isShared: IsSharedPool,
): void {
  if (!c.ha.enabled) return;
  for (const file of filesOf(c)) {
    const pool = pools.poolOf(file);
    if (pool && isShared(pool)) continue;
    const reason = pool
      ? `${file} is in pool "${pool}", which other hosts cannot reach: HA needs every disk and boot file on a shared pool (corral pool add NAME PATH --shared)`
      : `${file} is in no pool: HA needs every disk and boot file on a shared pool`;
    throw new CorralError('invalid-argument', `invalid argument "ha.enabled": ${reason}`, 'ha.enabled', { reason });
  }
}
