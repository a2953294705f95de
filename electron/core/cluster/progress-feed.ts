// Progress of work that runs on one host, for every host's subscribers: an evacuation or restore
// (on the host being emptied), a migration (on the VM's source host). The host puts each step
// under its own key in etcd; every other host watches the keys and hands the steps to its own
// subscribers, so any host's UI and CLI can follow it. A watch gives every revision in order,
// and the host's puts are chained, so no step is reordered.
import type { Etcd3, Watcher } from 'etcd3';
import type { z } from 'zod';

export interface FeedSpec<T> {
  /** What the steps are, for the log. */
  what: string;
  /** The prefix every host's key is under. */
  prefix: string;
  /** This host's key. */
  keyOf: (hostId: string) => string;
  schema: z.ZodType<T>;
}

export class ProgressFeed<T> {
  private watcher: Watcher | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<(p: T) => void>();

  constructor(
    private readonly etcd: Etcd3,
    private readonly selfId: string,
    private readonly log: (line: string) => void,
    private readonly spec: FeedSpec<T>,
  ) {}

  async start(): Promise<void> {
    const { what, prefix, keyOf } = this.spec;
    this.watcher = await this.etcd.watch().prefix(prefix).create();
    this.watcher.on('put', (kv) => {
      // this host's own steps went to its subscribers as they happened
      if (kv.key.toString() === keyOf(this.selfId)) return;
      const p = this.parse(kv.value.toString());
      if (p) this.listeners.forEach((fn) => fn(p));
      else this.log(`${what}: an unreadable step under ${kv.key.toString()}`);
    });
    this.watcher.on('error', (err) => this.log(`${what} watch: ${String(err)}`));
  }

  /** Steps of the other hosts. */
  on(fn: (p: T) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Tells the other hosts of a step of this host's (in order, never blocking it). */
  publish(p: T): void {
    this.chain = this.chain
      .then(() => this.etcd.put(this.spec.keyOf(this.selfId)).value(JSON.stringify(p)))
      .catch((err: Error) => this.log(`${this.spec.what}: ${err.message}`));
  }

  async close(): Promise<void> {
    await this.watcher?.cancel().catch(() => undefined);
  }

  private parse(text: string): T | null {
    try {
      const r = this.spec.schema.safeParse(JSON.parse(text));
      return r.success ? r.data : null;
    } catch {
      return null;
    }
  }
}
