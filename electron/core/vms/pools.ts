// Storage pools: the only doors from a VM config to host files. A disk, ISO, kernel or initrd
// must be a regular file inside a registered pool directory (the data dir's images folder is
// the pool "default"), judged by its real path with every symlink followed. Corral's own
// files, other VMs' files and the host's system trees are never reachable through a pool.
import fs from 'node:fs';
import path from 'node:path';
import type { Pool } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import type { PoolRepo } from '../store/pool-repo.js';

export const DEFAULT_POOL = 'default';
/** Uploads are written under this hidden name until complete (see pool-upload.ts). */
export const UPLOAD_PREFIX = '.upload-';

/** Trees no VM file may come from, whatever the pools say. */
const SYSTEM_TREES = ['/proc', '/sys', '/dev'];
/** Trees no pool (and no shared folder) may be or lie in. */
export const NO_POOL_TREES = [...SYSTEM_TREES, '/etc'];

export interface PoolLayout {
  /** The data dir (database, locks, VM dirs): never reachable except through its images folder. */
  root: string;
  /** The default pool. */
  images: string;
  /** Per-VM dirs: a VM reaches only its own. */
  vmsDir: string;
}

/** `p` is `dir` or inside it (both real paths). */
export function within(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : dir + '/');
}

export interface PoolEntry {
  name: string;
  path: string;
  isDefault: boolean;
  shared: boolean;
}

export interface ResolvedFile {
  /** The real path: what is stored and given to QEMU. */
  path: string;
  /** The pool it lies in (null: the VM's own dir). */
  pool: string | null;
}

export class Pools {
  private readonly root: string;
  private readonly images: string;
  private readonly vmsDir: string;

  constructor(
    private readonly repo: PoolRepo,
    layout: PoolLayout,
    private readonly now: () => number = Date.now,
  ) {
    fs.mkdirSync(layout.images, { recursive: true, mode: 0o700 });
    this.root = fs.realpathSync(layout.root);
    this.images = fs.realpathSync(layout.images);
    this.vmsDir = path.join(this.root, path.relative(layout.root, layout.vmsDir));
  }

  /** The data dir's real path (database, VM dirs, the default pool). */
  get dataDir(): string {
    return this.root;
  }

  /** Every pool, the default first, without usage (see `describe`). */
  all(): PoolEntry[] {
    return [
      { name: DEFAULT_POOL, path: this.images, isDefault: true, shared: false },
      ...this.repo.list().map((p) => ({ name: p.name, path: p.path, isDefault: false, shared: p.shared })),
    ];
  }

  /** Whether pool `name` is shared: every host of the cluster reaches it at the same path. */
  isShared(name: string): boolean {
    return this.all().some((p) => p.name === name && p.shared);
  }

  /** The shared pools, name → real path: what a host offers an HA VM. */
  shared(): Record<string, string> {
    return Object.fromEntries(
      this.all()
        .filter((p) => p.shared)
        .map((p) => [p.name, p.path]),
    );
  }

  get(name: string): PoolEntry {
    const pool = this.all().find((p) => p.name.toLowerCase() === name.toLowerCase());
    if (!pool) throw new CorralError('not-found', `no pool named "${name}" (see corral pool list)`, 'pool');
    return pool;
  }

  describe(p: PoolEntry, usedBy: string[]): Pool {
    let freeBytes: number | null = null;
    try {
      const st = fs.statfsSync(p.path);
      freeBytes = st.bavail * st.bsize;
    } catch {
      // gone or unreadable: shown as unknown
    }
    return { ...p, freeBytes, usedBy };
  }

  /** Registers `dir` as pool `name`; refuses system trees and anything holding Corral's own files. */
  add(name: string, dir: string, shared = false): PoolEntry {
    const fail = (field: 'name' | 'path', reason: string) =>
      new CorralError('invalid-argument', `invalid argument "${field}": ${reason}`, field, { reason });
    if (this.all().some((p) => p.name.toLowerCase() === name.toLowerCase()))
      throw new CorralError('conflict', `a pool named "${name}" already exists`, 'name', { reason: 'is taken' });
    let real: string;
    try {
      real = fs.realpathSync(dir);
    } catch (err) {
      throw fail('path', (err as NodeJS.ErrnoException).code === 'ENOENT' ? `${dir}: no such directory` : `${dir}: not readable`);
    }
    if (!fs.statSync(real).isDirectory()) throw fail('path', `${dir}: not a directory`);
    const shown = real === dir ? dir : `${dir} (${real})`;
    if (real === '/') throw fail('path', 'the root directory cannot be a pool');
    const tree = NO_POOL_TREES.find((t) => within(real, t));
    if (tree) throw fail('path', `${shown} is in ${tree}, which cannot be a pool`);
    if (within(this.root, real)) throw fail('path', `${shown} holds Corral's data dir (${this.root})`);
    if (within(real, this.root))
      throw fail('path', `${shown} is inside Corral's data dir; its images folder is already the pool "default"`);
    const same = this.all().find((p) => p.path === real);
    if (same)
      throw new CorralError('conflict', `${shown} is already the pool "${same.name}"`, 'path', {
        reason: `is already the pool "${same.name}"`,
      });
    this.repo.insert(name, real, this.now(), shared);
    return this.get(name);
  }

  remove(name: string): void {
    const pool = this.get(name);
    if (pool.isDefault)
      throw new CorralError('invalid-argument', 'invalid argument "name": the default pool cannot be removed', 'name', {
        reason: 'the default pool cannot be removed',
      });
    this.repo.remove(pool.name);
  }

  /** The pool a real path lies in, or null. */
  poolOf(real: string): string | null {
    // the innermost pool wins where pools nest
    let best: { name: string; path: string } | null = null;
    for (const p of this.all()) if (within(real, p.path) && (!best || p.path.length > best.path.length)) best = p;
    return best?.name ?? null;
  }

  /**
   * The real path of a file a VM config names in `field`, or an error naming the field. `ownVm`:
   * the VM whose own dir may hold it (disks Corral created before pools existed live there).
   */
  resolve(field: string, file: string, opts: { write?: boolean; ownVm?: string; base?: boolean } = {}): ResolvedFile {
    const refuse = (why: string): never => {
      throw new CorralError('invalid-argument', `invalid argument "${field}": ${file}: ${why}`, field, { reason: `${file}: ${why}` });
    };
    let real = '';
    try {
      real = fs.realpathSync(file);
    } catch (err) {
      refuse((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not readable');
    }
    const via = real === file ? '' : ` (it leads to ${real})`;
    const tree = SYSTEM_TREES.find((t) => within(real, t));
    if (tree) refuse(`is a host system file in ${tree}${via}`);
    const st = fs.statSync(real);
    if (!st.isFile()) refuse(`${kindOf(st)}, not a regular file${via}`);
    let pool: string | null = null;
    if (opts.ownVm && within(real, path.join(this.vmsDir, opts.ownVm))) pool = null;
    else if (within(real, this.root) && !within(real, this.images))
      refuse(within(real, this.vmsDir) ? `belongs to another VM${via}` : `is one of Corral's own files${via}`);
    else {
      pool = this.poolOf(real);
      if (!pool)
        refuse(`is outside the storage pools${via}: put it in one (corral pool list) or add its folder with corral pool add NAME DIR`);
    }
    if (path.basename(real).startsWith(UPLOAD_PREFIX)) refuse('is an upload in progress');
    // a base is opened read-only under its linked clones, never as a file of its own
    if (!opts.base && within(real, this.basesDir())) refuse('is a managed base of linked clones (see corral base list)');
    // a hard link made inside a pool to a host file would pass every path check
    if (st.nlink > 1) refuse(`has ${st.nlink - 1} other hard link(s): copy it into the pool instead${via}`);
    try {
      fs.accessSync(real, opts.write ? fs.constants.R_OK | fs.constants.W_OK : fs.constants.R_OK);
    } catch {
      refuse(opts.write ? 'not readable and writable' : 'not readable');
    }
    return { path: real, pool };
  }

  /** Where Corral creates a new disk for a VM: the default pool. */
  newDiskPath(vmId: string, index: number): string {
    return path.join(this.images, `${vmId}-disk${index}.qcow2`);
  }

  /** Where Corral keeps the read-only bases of linked clones: a folder of the default pool. */
  basesDir(): string {
    return path.join(this.images, 'bases');
  }

  /** A disk Corral created may be grown or deleted only where Corral creates disks. */
  isCreatedPlace(file: string, vmId: string): boolean {
    return within(file, this.images) || within(file, path.join(this.vmsDir, vmId));
  }
}

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}
