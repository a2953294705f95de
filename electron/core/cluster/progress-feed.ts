// The progress of an evacuation or restore, for every host's subscribers: it runs on the host
// being emptied, which puts each step under its key in etcd; every other host watches the keys
// and hands the steps to its own subscribers, so any host's UI and CLI can follow it. A watch
// gives every revision in order, and the host's puts are chained, so no step is reordered.
import type { Etcd3, Watcher } from 'etcd3';
import { EvacuationProgress } from '../api/evacuation-schemas.js';
import { keys } from './keys.js';

export class EvacuationFeed {
  private watcher: Watcher | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<(p: EvacuationProgress) => void>();

  constructor(
    private readonly etcd: Etcd3,
    private readonly selfId: string,
    private readonly log: (line: string) => void,
  ) {}

  async start(): Promise<void> {
    this.watcher = await this.etcd.watch().prefix(keys.evacuationProgress).create();
    this.watcher.on('put', (kv) => {
      // this host's own steps went to its subscribers as they happened
      if (kv.key.toString() === keys.evacuationProgressOf(this.selfId)) return;
      const p = parse(kv.value.toString());
      if (p) this.listeners.forEach((fn) => fn(p));
      else this.log(`evacuation progress: an unreadable step under ${kv.key.toString()}`);
    });
    this.watcher.on('error', (err) => this.log(`evacuation progress watch: ${String(err)}`));
  }

  /** Steps of other hosts' evacuations. */
  on(fn: (p: EvacuationProgress) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Tells the other hosts of a step of this host's evacuation (in order, never blocking it). */
  publish(p: EvacuationProgress): void {
    this.chain = this.chain
      .then(() => this.etcd.put(keys.evacuationProgressOf(this.selfId)).value(JSON.stringify(p)))
      .catch((err: Error) => this.log(`evacuation progress: ${err.message}`));
  }

  async close(): Promise<void> {
    await this.watcher?.cancel().catch(() => undefined);
  }
}

function parse(text: string): EvacuationProgress | null {
  try {
    const r = EvacuationProgress.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}
