// The cluster's hosts as this host sees them: records, liveness and revocations, read once and
// kept current by watches. The peer API asks it, per connection, whether a caller is admitted.
import type { Etcd3, Watcher } from 'etcd3';
import { keys } from './keys.js';
import { HostAlive, HostRecord } from './hosts.js';

export class HostDirectory {
  readonly hosts = new Map<string, HostRecord>();
  readonly alive = new Map<string, HostAlive>();
  readonly revoked = new Set<string>();
  private watchers: Watcher[] = [];

  constructor(
    private readonly etcd: Etcd3,
    private readonly log: (line: string) => void,
  ) {}

  async start(): Promise<void> {
    const follow = async (prefix: string, put: (id: string, v: string) => void, del: (id: string) => void) => {
      const w = await this.etcd.watch().prefix(prefix).create();
      w.on('put', (kv) => put(kv.key.toString().slice(prefix.length), kv.value.toString()));
      w.on('delete', (kv) => del(kv.key.toString().slice(prefix.length)));
      w.on('error', (err) => this.log(`watch ${prefix}: ${String(err)}`));
      this.watchers.push(w);
      for (const [k, v] of Object.entries(await this.etcd.getAll().prefix(prefix).strings())) put(k.slice(prefix.length), v);
    };
    await follow(
      keys.hosts,
      (id, v) => this.hosts.set(id, HostRecord.parse(JSON.parse(v))),
      (id) => this.hosts.delete(id),
    );
    await follow(
      keys.alive,
      (id, v) => this.alive.set(id, HostAlive.parse(JSON.parse(v))),
      (id) => this.alive.delete(id),
    );
    await follow(
      keys.revoked,
      (id) => this.revoked.add(id),
      () => undefined,
    );
  }

  /** Whether a certificate's host may call this host: in the cluster, not revoked. */
  admitted(hostId: string): { ok: true; name: string } | { ok: false; why: string } {
    if (this.revoked.has(hostId)) return { ok: false, why: `host ${hostId} left the cluster: its certificate is revoked` };
    const h = this.hosts.get(hostId);
    if (!h) return { ok: false, why: `host ${hostId} is not in the cluster` };
    return { ok: true, name: h.name };
  }

  nameOf(hostId: string): string {
    return this.hosts.get(hostId)?.name ?? hostId;
  }

  byName(name: string): HostRecord | null {
    for (const h of this.hosts.values()) if (h.name === name || h.id === name) return h;
    return null;
  }

  async close(): Promise<void> {
    await Promise.all(this.watchers.splice(0).map((w) => w.cancel().catch(() => undefined)));
  }
}
