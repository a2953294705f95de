// Settings that reach a running guest without a restart, and the ones QEMU's argv does not
// carry, applied while a new guest is still held at -S.
import path from 'node:path';
import type { VmConfig } from '../api/contract.js';
import { bootMemoryMiB } from '../api/rules.js';
import type { VmRecord } from '../store/vm-repo.js';
import { hotplugCpus, setBalloon, throttle } from '../resources/live.js';
import type { VmContext } from './context.js';
import { applyNicsLive } from './nic-live.js';
import type { RunningVm } from './registry.js';

/**
 * Applies one changed setting to the running VM (the rules have said it can be). Returns the
 * settings the running VM has now where that is not simply the new value (NICs added live are
 * marked, and the forwards that mirror them follow).
 */
export async function applyLive(
  ctx: VmContext,
  run: RunningVm,
  key: string,
  next: VmConfig,
  applied: VmConfig,
): Promise<Partial<VmConfig> | void> {
  const qmp = run.machine.qmp;
  switch (key) {
    case 'memoryMiB':
      return setBalloon(qmp, next.memoryMiB);
    case 'cpus':
      await hotplugCpus(qmp, next.cpus);
      return;
    case 'ioBps':
    case 'ioIops':
      return throttle(qmp, next);
    case 'nics': {
      // a private network is keyed by the data dir: the VMs dir's parent
      const hostKey = path.dirname(path.dirname(ctx.vmDir(run.vmId)));
      // the top-level forwards mirror the primary NIC's, which may just have changed live
      return { nics: await applyNicsLive(run, next.nics, applied.nics, hostKey), forwards: next.forwards };
    }
    case 'cpuWeight':
    case 'cpuCapPercent':
      if (applied.cpuWeight === null && applied.cpuCapPercent === null)
        ctx.cgroups!.place(run.vmId, run.machine.pid, next.cpuWeight, next.cpuCapPercent);
      else ctx.cgroups!.apply(run.vmId, next.cpuWeight, next.cpuCapPercent);
      return;
  }
}

/** Resource settings QEMU's argv does not carry, applied while the guest is held at -S (the caller records `applied`). */
export async function applyAtBoot(ctx: VmContext, run: RunningVm, rec: VmRecord): Promise<void> {
  const c = rec.config;
  const qmp = run.machine.qmp;
  if (c.memoryMiB < bootMemoryMiB(c)) await setBalloon(qmp, c.memoryMiB);
  if ((c.ioBps || c.ioIops) && c.disks.length) await throttle(qmp, c);
  if (c.cpuWeight !== null || c.cpuCapPercent !== null) {
    if (ctx.cgroups?.status.available) ctx.cgroups.place(rec.id, run.machine.pid, c.cpuWeight, c.cpuCapPercent);
    else ctx.journal.host(rec, `CPU weight/cap not applied: ${ctx.cgroups?.status.reason ?? 'cgroups unavailable'}`);
  }
}
