// The stored config of every VM of the cluster, kept in memory from a watch: the HA loop looks
// at them every second on every host, and reading the whole prefix from etcd that often was
// most of an idle cluster's requests. A watch stream can stall, so the HA host reads them all
// again now and then (reread); revisions decide which of a read and the watch is newer.
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { StoredConfig } from './inventory.js';
import { keys } from './keys.js';

interface Entry {
  config: StoredConfig;
  rev: number;
}

export class ConfigCache {
  private readonly byKey = new Map<string, Entry>();
  /** Deletions the watch told of, by key: a read from before them must not bring the key back. */
  private readonly deleted = new Map<string, number>();
  private watcher: Watcher | null = null;

  constructor(
    private readonly etcd: Etcd3,
    private readonly log: (line: string) => void,
  ) {}

  async start(): Promise<void> {
    // watch first, then read: a change between the two is seen twice, never missed
    this.watcher = await this.etcd.watch().prefix(keys.configs).create();
    this.watcher.on('put', (kv) => this.put(kv));
    this.watcher.on('delete', (kv) => this.remove(kv.key.toString(), Number(kv.mod_revision)));
    this.watcher.on('error', (err) => this.log(`watch ${keys.configs}: ${String(err)}`));
    await this.reread(false);
  }

  all(): StoredConfig[] {
    return [...this.byKey.values()].map((e) => e.config);
  }

  get(vmId: string): StoredConfig | null {
    return this.byKey.get(keys.config(vmId))?.config ?? null;
  }

  /**
   * Reads every config again and merges them in. Later reads are serializable, from the local
   * member: a linearizable read costs a heartbeat round of the whole cluster, and a healthy
   * member lags by milliseconds.
   */
  async reread(serializable = true): Promise<void> {
    const res = await this.etcd.getAll().prefix(keys.configs).serializable(serializable).exec();
    const at = Number(res.header.revision);
    const seen = new Set<string>();
    for (const kv of res.kvs) {
      seen.add(kv.key.toString());
      this.put(kv);
    }
    for (const [k, e] of this.byKey) if (!seen.has(k) && e.rev <= at) this.byKey.delete(k);
    // the read reflects every deletion up to its revision: those need no remembering
    for (const [k, rev] of this.deleted) if (rev <= at) this.deleted.delete(k);
  }

  private put(kv: IKeyValue): void {
    const k = kv.key.toString();
    const rev = Number(kv.mod_revision);
    if ((this.byKey.get(k)?.rev ?? 0) >= rev || (this.deleted.get(k) ?? 0) >= rev) return;
    try {
      this.byKey.set(k, { config: JSON.parse(kv.value.toString()) as StoredConfig, rev });
    } catch (err) {
      this.log(`config ${k}: ${(err as Error).message}`);
    }
  }

  private remove(k: string, rev: number): void {
    if ((this.byKey.get(k)?.rev ?? 0) >= rev) return;
    this.byKey.delete(k);
    this.deleted.set(k, rev);
  }

  async close(): Promise<void> {
    await this.watcher?.cancel().catch(() => undefined);
  }
}
