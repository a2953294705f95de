// Maintenance mode for a host of the cluster. Evacuate marks the host in etcd first (from then
// on it takes no VMs: no creates, no arrivals) and then empties it one VM at a time, as each
// VM's `evacuate` setting says: migrate (live when it runs, else moved stopped), restart (shut
// down, moved, started on the target), or stop (left stopped here). A VM that cannot migrate
// live is restarted elsewhere instead; one that no host takes stays as it was, reported failed.
// Restore ends the mode and can bring the VMs back. Runs on the host being evacuated.
import type { ArgsIn, EvacuatedVm, EvacuationProgress, MaintenanceRecord, MethodName, Result, VmInfo } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { isRunning } from '../api/rules.js';
import type { Cluster } from '../cluster/index.js';
import type { Vms } from '../vms/index.js';

export interface EvacuationDeps {
  cluster: Cluster;
  vms: Vms;
  /** Calls a method of this host (as the caller of the evacuation). */
  local: <M extends MethodName>(method: M, args: ArgsIn<M>) => Promise<Result<M>>;
  progress: (p: EvacuationProgress) => void;
}

export class Evacuation {
  constructor(private readonly d: EvacuationDeps) {}

  private get self() {
    return this.d.cluster.config;
  }

  async evacuate(): Promise<MaintenanceRecord> {
    const { cluster } = this.d;
    const before = await cluster.maintenance.read(this.self.hostId);
    const rec: MaintenanceRecord = { host: this.self.name, hostId: this.self.hostId, since: Date.now(), done: false, vms: [] };
    // VMs that left at an earlier, interrupted evacuation still belong to this record
    if (before) rec.vms.push(...before.vms.filter((v) => v.action !== 'failed'));
    await cluster.maintenance.put(rec);
    const todo = this.d.vms.service.list().filter((vm) => vm.state !== 'incoming');
    const say = (vm: string | null, done: number, message: string) =>
      this.d.progress({ host: rec.host, op: 'evacuate', vm, done, total: todo.length, message });
    say(null, 0, `Evacuating ${rec.host}: ${todo.length} VM(s)`);
    for (const [i, vm] of todo.entries()) {
      say(vm.name, i, `${vm.name}: ${vm.config.evacuate}`);
      const r = await this.one(vm);
      rec.vms = [...rec.vms.filter((v) => v.id !== r.id), r];
      await cluster.maintenance.put(rec);
      say(vm.name, i + 1, describe(r));
    }
    rec.done = true;
    await cluster.maintenance.put(rec);
    const failed = rec.vms.filter((v) => v.action === 'failed').length;
    say(null, todo.length, `${rec.host} is in maintenance${failed ? `; ${failed} VM(s) could not leave` : ''}`);
    return rec;
  }

  /** Other hosts that take VMs, the one with the most free memory first. */
  private targets(): string[] {
    const { directory, maintenance } = this.d.cluster;
    return [...directory.hosts.values()]
      .filter((h) => h.id !== this.self.hostId && directory.alive.has(h.id) && !maintenance.of(h.id))
      .map((h) => ({ name: h.name, free: freeOf(directory.alive.get(h.id)!) }))
      .sort((a, b) => b.free - a.free)
      .map((h) => h.name);
  }

  private async one(vm: VmInfo): Promise<EvacuatedVm> {
    const wasRunning = isRunning(vm.state) || vm.state === 'paused';
    const r = { id: vm.id, name: vm.name, wasRunning };
    try {
      if (vm.config.evacuate === 'stop') {
        if (wasRunning) await this.d.local('vm.stop', { vm: vm.id });
        return { ...r, action: 'stopped', to: null, why: null };
      }
      const targets = this.targets();
      if (!targets.length) return { ...r, action: 'failed', to: null, why: 'no other host takes VMs now' };
      let why = '';
      if (vm.config.evacuate === 'migrate' && vm.state !== 'paused') {
        for (const to of targets) {
          try {
            await this.d.local('vm.migrate', { vm: vm.id, to });
            return { ...r, action: wasRunning ? 'migrated' : 'moved', to, why: null };
          } catch (err) {
            why = (err as Error).message;
          }
        }
        // a stopped VM that no host takes cannot be helped by restarting it
        if (!wasRunning) return { ...r, action: 'failed', to: null, why };
      }
      if (wasRunning) await this.d.local('vm.stop', { vm: vm.id });
      for (const to of targets) {
        try {
          await this.d.local('vm.migrate', { vm: vm.id, to });
        } catch (err) {
          why = (err as Error).message;
          continue;
        }
        if (wasRunning) await this.d.cluster.peers.call(this.hostId(to), 'vm.start', { vm: vm.id });
        return { ...r, action: 'restarted', to, why: why || null };
      }
      return { ...r, action: 'failed', to: null, why: `${why}${wasRunning ? ' (it is stopped here)' : ''}` };
    } catch (err) {
      return { ...r, action: 'failed', to: null, why: (err as Error).message };
    }
  }

  private hostId(name: string): string {
    const h = this.d.cluster.directory.byName(name);
    if (!h) throw new CorralError('not-found', `host "${name}" left the cluster`);
    return h.id;
  }

  async restore(bringBack: boolean): Promise<{ host: string; returned: EvacuatedVm[] }> {
    const { cluster } = this.d;
    const rec = await cluster.maintenance.read(this.self.hostId);
    if (!rec) throw new CorralError('conflict', `host "${this.self.name}" is not in maintenance`, 'host');
    await cluster.maintenance.clear(this.self.hostId);
    const returned: EvacuatedVm[] = [];
    const back = bringBack ? rec.vms.filter((v) => v.action !== 'failed') : [];
    const say = (vm: string | null, done: number, message: string) =>
      this.d.progress({ host: rec.host, op: 'restore', vm, done, total: back.length, message });
    say(null, 0, `Restoring ${rec.host}${back.length ? `: bringing back ${back.length} VM(s)` : ''}`);
    for (const [i, v] of back.entries()) {
      say(v.name, i, `${v.name}: coming back`);
      returned.push(await this.bringBack(v));
      say(v.name, i + 1, describe(returned.at(-1)!));
    }
    say(null, back.length, `${rec.host} takes VMs again`);
    return { host: rec.host, returned };
  }

  /** One VM back here: migrated back from where it is now, or started again if it was stopped here. */
  private async bringBack(v: EvacuatedVm): Promise<EvacuatedVm> {
    try {
      if (v.action === 'stopped') {
        if (v.wasRunning) await this.d.local('vm.start', { vm: v.id });
        return { ...v, action: 'stopped', to: this.self.name, why: null };
      }
      const there = this.d.cluster.inventory.find(v.id);
      if (!there) return { ...v, action: 'failed', to: null, why: 'it is no longer in the cluster (or already here)' };
      await this.d.cluster.peers.call(there.host.id, 'vm.migrate', { vm: v.id, to: this.self.name });
      return { ...v, to: this.self.name, why: null };
    } catch (err) {
      return { ...v, action: 'failed', to: null, why: (err as Error).message };
    }
  }
}

function freeOf(a: { memoryBytes: number; committedBytes: number }): number {
  return a.memoryBytes - a.committedBytes;
}

function describe(r: EvacuatedVm): string {
  switch (r.action) {
    case 'migrated':
      return `${r.name}: migrated live to ${r.to}`;
    case 'moved':
      return `${r.name}: moved (stopped) to ${r.to}`;
    case 'restarted':
      return `${r.name}: ${r.wasRunning ? 'restarted' : 'moved'} on ${r.to}`;
    case 'stopped':
      return `${r.name}: ${r.to ? (r.wasRunning ? 'started again here' : 'stays here') : 'stopped here'}`;
    case 'failed':
      return `${r.name}: could not leave: ${r.why}`;
  }
}
