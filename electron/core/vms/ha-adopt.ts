// An HA failover moves a VM's record, not its files: the disks are on a shared pool that the
// new owner reaches at the same path. The new owner adopts the record (same id, name and
// config) before starting it; a host that comes back and finds its HA VM owned elsewhere drops
// its stale record and keeps every file, which now belong to the VM on the other host.
import type { VmConfig } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { ensurePrivateDir } from '../private-files.js';
import { checkBootFiles } from './config-checks.js';
import { recordOf } from './context.js';
import { checkHaStorage } from './ha-storage.js';
import type { Vms } from './index.js';

export interface AdoptedVm {
  id: string;
  name: string;
  config: VmConfig;
}

/** Records an HA VM another host ran, here; its files must be on this host's shared pools. */
export function adoptHaVm(vms: Vms, vm: AdoptedVm, message: string): void {
  const { ctx } = vms;
  if (ctx.vms.get(vm.id)) return;
  if (ctx.vms.nameTaken(vm.name)) throw new CorralError('conflict', `a VM named "${vm.name}" already exists on this host`, 'name');
  const owner = (real: string) => ctx.vms.list().find((o) => o.config.disks.some((d) => d.path === real))?.name ?? null;
  checkBootFiles(vm.config, ctx.pools, owner);
  checkHaStorage(vm.config, ctx.pools, (p) => ctx.pools.isShared(p));
  ensurePrivateDir(ctx.vmDir(vm.id));
  const rec = ctx.vms.insert(vm.id, vm.name, vm.config, ctx.clock.now());
  ctx.journal.created(rec, message);
  ctx.journal.changed(rec.id);
}

/** Drops the record of an HA VM now owned by another host; false while it runs here. */
export async function dropMovedHaVm(vms: Vms, id: string, message: string): Promise<boolean> {
  const { ctx } = vms;
  if (!ctx.vms.get(id)) return true;
  return ctx.locks.run(id, () => {
    const cur = ctx.vms.get(id);
    if (!cur) return true;
    if (ctx.registry.has(id)) return false;
    // its disks are the other host's VM's now: every file stays
    vms.service.remove(recordOf(ctx, id), true, message);
    return true;
  });
}
