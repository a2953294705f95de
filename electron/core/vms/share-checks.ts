// Which host folders a VM may share into its guest. A shared folder hands the guest a piece of
// the host's file system, so it is judged by its real path (every symlink followed) and refused
// where it would reach the host's system trees, Corral's own data (database, other VMs' files,
// the pools' disk images) or a folder another VM writes to.
import fs from 'node:fs';
import path from 'node:path';
import type { SharedFolder } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { LIMITS } from '../api/rules.js';
import type { VmContext } from './context.js';
import { NO_POOL_TREES, within, type Pools } from './pools.js';

/** The shares of the other VMs, by VM name. */
export type OtherShares = Array<{ vm: string; share: SharedFolder }>;

/** The real path of a folder to share, or an error naming `field` and why. */
export function checkShareFolder(field: string, dir: string, pools: Pools, others: OtherShares, readOnly: boolean): string {
  const refuse = (why: string): never => {
    throw new CorralError('invalid-argument', `invalid argument "${field}": ${dir}: ${why}`, field, { reason: `${dir}: ${why}` });
  };
  let real = '';
  try {
    real = fs.realpathSync(dir);
  } catch (err) {
    refuse((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : 'not reachable');
  }
  const via = real === dir ? '' : ` (it leads to ${real})`;
  if (!fs.statSync(real).isDirectory()) refuse(`not a directory${via}`);
  if (real === '/') refuse(`is the root directory: share a folder below it${via}`);
  const tree = NO_POOL_TREES.find((t) => within(real, t));
  if (tree) refuse(`is in ${tree}, a host system tree${via}`);
  const data = pools.dataDir;
  if (real === data) refuse(`is Corral's data dir, which holds its database and every VM's files${via}`);
  if (within(real, data)) refuse(`is inside Corral's data dir (${data}), which holds other VMs' files${via}`);
  if (within(data, real)) refuse(`holds Corral's data dir (${data})${via}`);
  for (const p of pools.all()) {
    if (p.isDefault) continue;
    if (within(real, p.path) || within(p.path, real))
      refuse(`overlaps the storage pool "${p.name}" (${p.path}), where VM disks live${via}`);
  }
  // two guests writing one folder at once corrupt each other's view (no coherent caching)
  for (const o of others) {
    if (readOnly && o.share.readOnly) continue;
    if (within(real, o.share.path) || within(o.share.path, real))
      refuse(`overlaps the folder "${o.vm}" shares (${o.share.path}); two VMs may share a folder only read-only${via}`);
  }
  return real;
}

/** The shares of every VM but `vmId`. */
export function otherShares(ctx: VmContext, vmId: string | null): OtherShares {
  return ctx.vms.list().flatMap((r) => (r.id === vmId ? [] : r.config.shares.map((share) => ({ vm: r.name, share }))));
}

/**
 * Checks the shares of a VM being made or changed: each folder is allowed (see share-checks),
 * no tag twice. Returns them with real paths.
 */
export function checkShares(
  ctx: VmContext,
  vmId: string | null,
  shares: ReadonlyArray<Omit<SharedFolder, 'tag'> & { tag?: string }>,
  field = 'shares',
): SharedFolder[] {
  const others = otherShares(ctx, vmId);
  const out: SharedFolder[] = [];
  shares.forEach((given, i) => {
    const s = { ...given, tag: given.tag ?? defaultTag(given.path, [...out.map((o) => o.tag), ...shares.flatMap((x) => x.tag ?? [])]) };
    const real = checkShareFolder(`${field}.${i}.path`, s.path, ctx.pools, others, s.readOnly);
    if (out.some((o) => o.tag === s.tag)) {
      const reason = `"${s.tag}" is already the tag of another shared folder of this VM`;
      throw new CorralError('invalid-argument', `invalid argument "${field}.${i}.tag": ${reason}`, `${field}.${i}.tag`, { reason });
    }
    out.push({ ...s, path: real });
  });
  return out;
}

/**
 * Again at each start: a folder checked when it was added may have been swapped since for a
 * symlink to somewhere else, or a pool may have been added around it.
 */
export function recheckShares(ctx: VmContext, vmId: string, shares: readonly SharedFolder[]): void {
  checkShares(ctx, vmId, shares).forEach((s, i) => {
    const was = shares[i]!.path;
    if (s.path === was) return;
    const reason = `${was}: now leads to ${s.path}; remove the shared folder and add it again`;
    throw new CorralError('invalid-argument', `invalid argument "shares.${i}.path": ${reason}`, `shares.${i}.path`, { reason });
  });
}

/** A tag from the folder's name: what the guest mounts it by when none is given. */
export function defaultTag(dir: string, taken: readonly string[]): string {
  const base =
    path
      .basename(dir)
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .replace(/^[^A-Za-z0-9]+/, '')
      .slice(0, LIMITS.shareTagLength.max - 3) || 'share';
  let tag = base;
  for (let n = 2; taken.includes(tag); n++) tag = `${base}-${n}`;
  return tag;
}
