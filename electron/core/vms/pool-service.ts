// The pool.* calls: list, register, unregister (never while a VM uses a file in the pool) and
// list a pool's files. Which files a VM uses comes from its saved config and, while it runs,
// from what its QEMU was started with.
import type { Readable } from 'node:stream';
import type { Pool, PoolFile, VmConfig } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import type { VmContext } from './context.js';
import { listPoolFiles } from './pool-files.js';
import { receiveUpload, type UploadResult } from './pool-upload.js';

function filesOf(c: Pick<VmConfig, 'disks' | 'iso' | 'kernel' | 'initrd'>): string[] {
  return [...c.disks.map((d) => d.path), c.iso, c.kernel, c.initrd].filter((p): p is string => !!p);
}

export class PoolService {
  constructor(private readonly ctx: VmContext) {}

  list(): Pool[] {
    return this.ctx.pools.all().map((p) => this.ctx.pools.describe(p, this.usersOf(p.name)));
  }

  add(name: string, dir: string, shared = false): Pool {
    const p = this.ctx.pools.add(name, dir, shared);
    return this.ctx.pools.describe(p, []);
  }

  remove(name: string): void {
    const pool = this.ctx.pools.get(name);
    const users = this.usersOf(pool.name);
    if (users.length) {
      const reason = `in use by ${users.map((u) => `"${u}"`).join(', ')}`;
      throw new CorralError('conflict', `pool "${pool.name}" is ${reason}: remove their files from it first`, 'name', { reason });
    }
    this.ctx.pools.remove(pool.name);
  }

  files(name: string): PoolFile[] {
    return listPoolFiles(this.ctx.pools.get(name).path);
  }

  /** Streams a new file into a pool (see pool-upload.ts). */
  upload(pool: string, name: string, size: number, body: Readable): Promise<UploadResult> {
    return receiveUpload(this.ctx.pools.get(pool).path, name, size, body);
  }

  /** Names of the VMs with a file (saved or running) in the pool. */
  private usersOf(pool: string): string[] {
    return this.ctx.vms
      .list()
      .filter((vm) => [...filesOf(vm.config), ...(vm.applied ? filesOf(vm.applied) : [])].some((f) => this.ctx.pools.poolOf(f) === pool))
      .map((vm) => vm.name);
  }
}
