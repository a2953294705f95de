// The storage pools of a host and the files in each, for the VM dialog's file pickers. Loaded
// when a dialog opens (files change outside Corral's sight: copies, uploads by others).
import type { Pool, PoolFile, PoolFileKind } from '../../../electron/core/api/contract';
import { errorMessage, type ApiClient } from './api';

export interface PoolWithFiles extends Pool {
  files: PoolFile[];
}

export class PoolFiles {
  pools = $state<PoolWithFiles[]>([]);
  loading = $state(true);
  error = $state<string | null>(null);

  constructor(private readonly api: ApiClient) {}

  async load(): Promise<void> {
    try {
      const pools = await this.api.call('pool.list', {});
      this.pools = await Promise.all(pools.map(async (p) => ({ ...p, files: await this.api.call('pool.files', { pool: p.name }) })));
      this.error = null;
    } catch (err) {
      this.error = errorMessage(err);
    } finally {
      this.loading = false;
    }
  }

  /** Each pool with its files of these kinds, pools without any left out. */
  grouped(kinds: readonly PoolFileKind[]): Array<{ pool: string; files: PoolFile[] }> {
    return this.pools
      .map((p) => ({ pool: p.name, files: p.files.filter((f) => kinds.includes(f.format)) }))
      .filter((g) => g.files.length > 0);
  }

  /** Whether a path is one of the listed files. */
  has(path: string): boolean {
    return this.pools.some((p) => p.files.some((f) => f.path === path));
  }
}
