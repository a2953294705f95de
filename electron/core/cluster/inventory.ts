// One inventory: this host publishes its VMs to etcd (one key per VM under its own prefix, put
// with its lease, so the keys of a host that stops renewing go away) and its VMs' configs
// (unleased: they outlive their host). It watches every other host's keys, so any host lists
// every VM of the cluster with the host it is on, live. A VM whose host's keys vanished stays
// listed, marked as not reporting.
import { EventEmitter } from 'node:events';
import type { Etcd3, Lease, Watcher } from 'etcd3';
import type { VmInfo } from '../api/contract.js';
import type { Vms } from '../vms/index.js';
import { ConfigCache } from './config-cache.js';
import { hostOfInventoryKey, keys } from './keys.js';

export interface VmHost {
  id: string;
  name: string;
  reporting: boolean;
}
export type ClusterVm = VmInfo & { host: VmHost };

/** What a config key holds: the VM's settings and where it last ran. */
export interface StoredConfig {
  vmId: string;
  name: string;
  hostId: string;
  config: VmInfo['config'];
}

export class Inventory extends EventEmitter<{ changed: [ClusterVm]; removed: [{ id: string; name: string }] }> {
  /** Other hosts' VMs by id. */
  private readonly remote = new Map<string, ClusterVm>();
  /** VMs that ended here as migrated: their config and name are their new host's. */
  private readonly movedAway = new Set<string>();
  private watcher: Watcher | null = null;
  private readonly stored: ConfigCache;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(
    private readonly etcd: Etcd3,
    private readonly self: { id: string; name: string },
    private readonly vms: Vms,
    /** The current lease of this host (renewed by the cluster; replaced after a loss). */
    private readonly lease: () => Lease,
    private readonly hostName: (hostId: string) => string,
    private readonly log: (line: string) => void,
  ) {
    super();
    this.stored = new ConfigCache(etcd, log);
  }

  async start(): Promise<void> {
    // watch first, then read: a change between the two is seen twice, never missed
    this.watcher = await this.etcd.watch().prefix(keys.inventory).create();
    this.watcher.on('put', (kv) => this.onPut(kv.key.toString(), kv.value.toString()));
    this.watcher.on('delete', (kv) => this.onDelete(kv.key.toString()));
    this.watcher.on('error', (err) => this.log(`inventory watch: ${String(err)}`));
    await this.stored.start();
    const published = await this.etcd.getAll().prefix(keys.inventory).strings();
    // VMs known only by their config: their host is gone or has not published yet
    for (const c of this.stored.all()) {
      if (c.hostId === this.self.id || this.remote.has(c.vmId)) continue;
      this.remote.set(c.vmId, notReporting(c, this.hostName(c.hostId)));
    }
    for (const [k, v] of Object.entries(published)) this.onPut(k, v);
    const changed = (vm: VmInfo) => void this.publish(vm).catch((err: Error) => this.log(`inventory: ${err.message}`));
    const removed = (vm: { id: string; name: string }) =>
      void this.unpublish(vm).catch((err: Error) => this.log(`inventory: ${err.message}`));
    this.vms.journal.on('changed', changed);
    this.vms.journal.on('removed', removed);
    this.unsubscribe.push(
      () => this.vms.journal.off('changed', changed),
      () => this.vms.journal.off('removed', removed),
    );
    await this.publishAll();
  }

  /**
   * Publishes a VM that just arrived before the call that made it run here returns: the host
   * it left then finds the config is this host's, and keeps its hands off it and the name.
   */
  async publishArrival(vmId: string): Promise<void> {
    await this.publish(this.vms.service.get(vmId), true);
  }

  /** Puts every local VM again (at start, and with a new lease after the old one was lost). */
  async publishAll(): Promise<void> {
    for (const vm of this.vms.service.list()) {
      if (!(await this.claimName(vm.name, vm.id)))
        this.log(`inventory: the name "${vm.name}" is taken by another VM of the cluster: rename one`);
      await this.publish(vm);
    }
  }

  private async publish(vm: VmInfo, arrival = false): Promise<void> {
    const entry: ClusterVm = { ...vm, host: { id: this.self.id, name: this.self.name, reporting: true } };
    const left = vm.lastExit?.reason === 'migrated';
    if (left) this.movedAway.add(vm.id);
    await this.lease().put(keys.inventoryVm(this.self.id, vm.id)).value(JSON.stringify(entry));
    // the config (and with it the name) is the owner's: an arrival takes it over only once it
    // runs here, and the host it left never writes it again
    if (vm.state === 'incoming' || left) return;
    await this.putConfig(vm, arrival);
  }

  /**
   * Writes the VM's config as this host's, unless another host holds it and the VM neither runs
   * here nor just moved here (a stopped VM moves too). A host cut off while its VM failed over
   * elsewhere publishes the VM's end late (after the heal, or a write delayed by the cut lands
   * then) and must not take the config back: it would delete it as its own when it drops its
   * stale record. Compared on the revision read, so a write by the new host in between stands.
   */
  private async putConfig(vm: VmInfo, arrival: boolean): Promise<void> {
    const k = keys.config(vm.id);
    const stored: StoredConfig = { vmId: vm.id, name: vm.name, hostId: this.self.id, config: vm.config };
    const runsHere = vm.state === 'starting' || vm.state === 'running' || vm.state === 'paused' || vm.state === 'stopping';
    for (let tries = 0; tries < 3; tries++) {
      const kv = (await this.etcd.get(k).exec()).kvs[0];
      const holder = kv ? (JSON.parse(kv.value.toString()) as StoredConfig).hostId : null;
      if (holder && holder !== this.self.id && !runsHere && !arrival) return;
      const r = await this.etcd
        .if(k, 'Mod', '==', kv ? kv.mod_revision : 0)
        .then(this.etcd.put(k).value(JSON.stringify(stored)))
        .commit();
      if (r.succeeded) return;
    }
    this.log(`inventory: the config of "${vm.name}" kept changing: not written`);
  }

  private async unpublish(vm: { id: string; name: string }): Promise<void> {
    await this.etcd.delete().key(keys.inventoryVm(this.self.id, vm.id));
    if (this.movedAway.delete(vm.id)) return;
    // a VM that moved to another host is that host's now: its config and name stay
    const k = keys.config(vm.id);
    const cur = await this.etcd.get(k).exec();
    const kv = cur.kvs[0];
    if (kv && (JSON.parse(kv.value.toString()) as StoredConfig).hostId !== this.self.id) return;
    // deleted only if unchanged since read: an arrival's put in between wins
    if (kv) {
      const r = await this.etcd.if(k, 'Mod', '==', kv.mod_revision).then(this.etcd.delete().key(k)).commit();
      if (!r.succeeded) return;
    }
    // the name is free again, if it is still this VM's
    await this.etcd
      .if(keys.vmName(vm.name), 'Value', '==', vm.id)
      .then(this.etcd.delete().key(keys.vmName(vm.name)))
      .commit();
  }

  /** The stored config of every VM of the cluster (HA failover reads a dead host's from here). */
  configs(): StoredConfig[] {
    return this.stored.all();
  }

  /** One VM's stored config, as the watch last told it. */
  config(vmId: string): StoredConfig | null {
    return this.stored.get(vmId);
  }

  /** One VM's stored config as etcd has it now. */
  async readConfig(vmId: string): Promise<StoredConfig | null> {
    const text = await this.etcd.get(keys.config(vmId)).string();
    return text === null ? null : (JSON.parse(text) as StoredConfig);
  }

  /** Reads the configs again, in case their watch stalled. */
  rereadConfigs(): Promise<void> {
    return this.stored.reread();
  }

  private onPut(key: string, value: string): void {
    const at = hostOfInventoryKey(key);
    if (!at || at.hostId === this.self.id) return;
    const vm = JSON.parse(value) as ClusterVm;
    // the host a guest just left publishes its end after the new host published it running:
    // stale for every other host, where it would show the guest stopped for a moment
    const cur = this.remote.get(vm.id);
    if (vm.lastExit?.reason === 'migrated' && cur && cur.host.id !== at.hostId) return;
    this.remote.set(vm.id, vm);
    this.emit('changed', vm);
  }

  private onDelete(key: string): void {
    const at = hostOfInventoryKey(key);
    if (!at || at.hostId === this.self.id) return;
    const vm = this.remote.get(at.vmId);
    // gone from a host it had left already (it moved): the entry is its new host's
    if (!vm || vm.host.id !== at.hostId) return;
    // deleted on purpose (the VM is gone: its config went with it) or its host's lease expired
    void this.etcd
      .get(keys.config(at.vmId))
      .string()
      .then((cfg) => {
        const owner = cfg === null ? null : (JSON.parse(cfg) as StoredConfig).hostId;
        if (cfg === null) {
          this.remote.delete(at.vmId);
          this.emit('removed', { id: vm.id, name: vm.name });
        } else if (owner !== at.hostId) {
          // it moved: to this host (listed as ours now) or to another, whose entry is read again
          // (the old host may have published after the new one)
          if (owner === this.self.id) this.remote.delete(at.vmId);
          else void this.reread(owner!, at.vmId).catch((err: Error) => this.log(`inventory: ${err.message}`));
        } else {
          const stale = { ...vm, host: { ...vm.host, reporting: false } };
          this.remote.set(vm.id, stale);
          this.emit('changed', stale);
        }
      })
      .catch((err: Error) => this.log(`inventory: ${err.message}`));
  }

  private async reread(hostId: string, vmId: string): Promise<void> {
    const text = await this.etcd.get(keys.inventoryVm(hostId, vmId)).string();
    if (text) this.onPut(keys.inventoryVm(hostId, vmId), text);
    else if (this.remote.get(vmId)?.host.id !== hostId) this.remote.delete(vmId);
  }

  /** Every VM of the other hosts. */
  others(): ClusterVm[] {
    return [...this.remote.values()];
  }

  /** The VM (by id or name) on another host, or null. */
  find(ref: string): ClusterVm | null {
    const byId = this.remote.get(ref);
    if (byId) return byId;
    for (const vm of this.remote.values()) if (vm.name === ref) return vm;
    return null;
  }

  /** Claims a VM name for the cluster: false when another VM has it. */
  async claimName(name: string, vmId: string): Promise<boolean> {
    const k = keys.vmName(name);
    const r = await this.etcd.if(k, 'Version', '==', 0).then(this.etcd.put(k).value(vmId)).else(this.etcd.get(k)).commit();
    if (r.succeeded) return true;
    const holder = r.responses[0]?.response_range?.kvs[0]?.value.toString();
    return holder === vmId;
  }

  /** Moves a name's claim from a placeholder to the VM made under it. */
  async claimAs(name: string, from: string, vmId: string): Promise<void> {
    const k = keys.vmName(name);
    await this.etcd.if(k, 'Value', '==', from).then(this.etcd.put(k).value(vmId)).commit();
  }

  async releaseName(name: string, vmId: string): Promise<void> {
    await this.etcd
      .if(keys.vmName(name), 'Value', '==', vmId)
      .then(this.etcd.delete().key(keys.vmName(name)))
      .commit();
  }

  async close(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    await this.watcher?.cancel().catch(() => undefined);
    await this.stored.close();
  }
}

function notReporting(c: StoredConfig, hostName: string): ClusterVm {
  return {
    id: c.vmId,
    name: c.name,
    state: 'stopped',
    stateSince: 0,
    pid: null,
    restarts: 0,
    lastExit: null,
    restartAt: null,
    startedAt: null,
    pending: [],
    diskSizes: c.config.disks.map(() => null),
    booted: null,
    config: c.config,
    configVersion: 0,
    createdAt: 0,
    host: { id: c.hostId, name: hostName, reporting: false },
  };
}
