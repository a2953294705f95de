// Which hosts are in maintenance: a record per host in etcd (unleased: it outlives a restart of
// the host), read once and kept current by a watch, so a host refuses new VMs at once and any
// host can show and end another's maintenance.
import type { Etcd3, Watcher } from 'etcd3';
import { MaintenanceRecord } from '../api/evacuation-schemas.js';
import { keys } from './keys.js';

export class MaintenanceBook {
  private readonly records = new Map<string, MaintenanceRecord>();
  private watcher: Watcher | null = null;

  constructor(
    private readonly etcd: Etcd3,
    private readonly log: (line: string) => void,
  ) {}

  async start(): Promise<void> {
    const id = (key: string) => key.slice(keys.maintenance.length);
    this.watcher = await this.etcd.watch().prefix(keys.maintenance).create();
    this.watcher.on('put', (kv) => this.take(id(kv.key.toString()), kv.value.toString()));
    this.watcher.on('delete', (kv) => this.records.delete(id(kv.key.toString())));
    this.watcher.on('error', (err) => this.log(`maintenance watch: ${String(err)}`));
    for (const [k, v] of Object.entries(await this.etcd.getAll().prefix(keys.maintenance).strings())) this.take(id(k), v);
  }

  private take(hostId: string, text: string): void {
    const r = MaintenanceRecord.safeParse(JSON.parse(text));
    if (r.success) this.records.set(hostId, r.data);
    else this.log(`maintenance: the record of ${hostId} is unreadable`);
  }

  /** The host's record, or null when it is not in maintenance. */
  of(hostId: string): MaintenanceRecord | null {
    return this.records.get(hostId) ?? null;
  }

  /** Read from etcd (not the watch): a restore right after the evacuation sees its last word. */
  async read(hostId: string): Promise<MaintenanceRecord | null> {
    const text = await this.etcd.get(keys.maintenanceOf(hostId)).string();
    return text === null ? null : MaintenanceRecord.parse(JSON.parse(text));
  }

  async put(r: MaintenanceRecord): Promise<void> {
    await this.etcd.put(keys.maintenanceOf(r.hostId)).value(JSON.stringify(r));
    this.records.set(r.hostId, r);
  }

  async clear(hostId: string): Promise<void> {
    await this.etcd.delete().key(keys.maintenanceOf(hostId));
    this.records.delete(hostId);
  }

  async close(): Promise<void> {
    await this.watcher?.cancel().catch(() => undefined);
  }
}
