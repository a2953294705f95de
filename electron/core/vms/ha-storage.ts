// An HA VM must be startable on another host: every disk and boot file on a pool all hosts
// reach (shared storage). The cluster layer brings shared pools (`corral pool add --shared`);
// until it is merged, no pool is shared (sharedPoolPendingCluster) and HA is refused with why.
import type { VmConfig } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import type { Pools } from './pools.js';

/** Whether other hosts reach this pool at the same path. */
export type IsSharedPool = (pool: string) => boolean;

/** Stub until the cluster's shared pools land: a single host has no shared pool. */
export const sharedPoolPendingCluster: IsSharedPool = () => false;

/** Refuses HA on a VM with a disk, ISO, kernel or initrd outside a shared pool, naming the file. */
export function checkHaStorage(
  c: Pick<VmConfig, 'ha' | 'disks' | 'iso' | 'kernel' | 'initrd'>,
  pools: Pick<Pools, 'poolOf'>,
  isShared: IsSharedPool,
): void {
  if (!c.ha.enabled) return;
  const files = [...c.disks.map((d) => d.path), c.iso, c.kernel, c.initrd].filter((f): f is string => !!f);
  for (const file of files) {
    const pool = pools.poolOf(file);
    if (pool && isShared(pool)) continue;
    const reason = pool
      ? `${file} is in pool "${pool}", which other hosts cannot reach: HA needs every disk and boot file on a shared pool`
      : `${file} is in no pool: HA needs every disk and boot file on a shared pool`;
    throw new CorralError('invalid-argument', `invalid argument "ha.enabled": ${reason}`, 'ha.enabled', { reason });
  }
}
