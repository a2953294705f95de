// Managed bases of linked clones. A base is a read-only standalone qcow2 in the default pool's
// bases folder that Corral made itself; a linked clone's disk is an overlay on it. The bases
// table is how Corral tells its own chains from a backing file a user's image brings (which is
// refused): only a disk row naming a registered base is opened with a backing file.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { DiskConfig } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { createOverlay, convertToQcow2, type ConvertOptions } from '../qemu/img-copy.js';
import { hasInternalSnapshots } from '../qemu/img.js';
import type { BaseRow } from '../store/base-repo.js';
import type { VmRecord } from '../store/vm-repo.js';
import type { VmContext } from './context.js';

function repo(ctx: VmContext) {
  if (!ctx.bases) throw new CorralError('failed', 'this host keeps no managed bases');
  return ctx.bases;
}

export function listBases(ctx: VmContext): BaseRow[] {
  return ctx.bases?.list() ?? [];
}

/** Which base a path is, if any (a base is never a disk, ISO or boot file of a VM). */
export function isBase(ctx: VmContext, real: string): boolean {
  return !!ctx.bases?.get(real);
}

/**
 * The base a linked clone of `src`'s disk `i` stands on, made if needed. A disk Corral created
 * turns into the base itself (moved, no copy) and the source gets an empty overlay at its old
 * path; any other disk (brought by the user, raw, or holding internal snapshots) is copied into
 * a new base and stays as it is. A disk already on a base shares it.
 */
export async function baseFor(ctx: VmContext, src: VmRecord, i: number, o: ConvertOptions): Promise<{ base: string; shared: boolean }> {
  const disk = src.config.disks[i]!;
  if (disk.base) return { base: disk.base, shared: true };
  const bases = repo(ctx);
  const dir = ctx.pools.basesDir();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const base = path.join(fs.realpathSync(dir), `${randomBytes(6).toString('hex')}.qcow2`);
  const movable =
    disk.owned &&
    disk.format === 'qcow2' &&
    ctx.pools.isCreatedPlace(disk.path, src.id) &&
    !(await hasInternalSnapshots(disk.path, ctx.env)) &&
    fs.statSync(disk.path).dev === fs.statSync(dir).dev;
  if (!movable) {
    await convertToQcow2(disk, base, o, ctx.env);
    fs.chmodSync(base, 0o400);
    bases.insert(base, src.name, ctx.clock.now());
    return { base, shared: false };
  }
  fs.renameSync(disk.path, base);
  try {
    fs.chmodSync(base, 0o400);
    await createOverlay(base, disk.path, ctx.env);
    ctx.vms.transaction(() => {
      bases.insert(base, src.name, ctx.clock.now());
      ctx.vms.setDiskBase(src.id, i, base);
    });
  } catch (err) {
    fs.rmSync(disk.path, { force: true });
    fs.chmodSync(base, 0o600);
    fs.renameSync(base, disk.path);
    throw err;
  }
  ctx.journal.updated(src, `Disk ${i} is now an overlay on the managed base ${base} (for a linked clone)`);
  return { base, shared: false };
}

/** Removes the bases of these disks that no disk stands on any more. */
export function releaseBases(ctx: VmContext, disks: ReadonlyArray<Pick<DiskConfig, 'base'>>): void {
  for (const b of new Set(disks.map((d) => d.base).filter((b): b is string => !!b))) {
    const row = ctx.bases?.get(b);
    if (row && !row.dependents.length) removeBaseFile(ctx, b);
  }
}

/** Deletes a base on request: refused while a VM stands on it. */
export function deleteBase(ctx: VmContext, file: string): void {
  const row = repo(ctx).get(file);
  if (!row) throw new CorralError('not-found', `no managed base ${file} (see corral base list)`, 'path');
  if (row.dependents.length) {
    const names = row.dependents.map((d) => `"${d.vmName}"`).join(', ');
    throw new CorralError('conflict', `the base ${file} has linked clones: ${names}; delete them first`, 'path', {
      reason: `used by ${names}`,
      current: row.dependents.length,
    });
  }
  removeBaseFile(ctx, file);
}

function removeBaseFile(ctx: VmContext, file: string): void {
  repo(ctx).remove(file);
  fs.rmSync(file, { force: true });
}
