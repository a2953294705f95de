// Applying resource settings to a running QEMU: the balloon for memory, CPU hotplug for vCPUs,
// I/O limits per disk, disk growth. QEMU-level steps only; which settings may change live is
// decided by the rules in api/rules.ts.
import type { VmConfig } from '../api/contract.js';
import { MiB } from '../api/units.js';
import type { QemuCommands } from '../qemu/commands.js';
import { cpuDevice } from '../qemu/ids.js';

export async function setBalloon(qmp: QemuCommands, memoryMiB: number): Promise<void> {
  await qmp.setBalloon(memoryMiB * MiB);
}

/** Adds vCPUs until `target` are present; QEMU only plugs, the guest (or its agent) onlines them. */
export async function hotplugCpus(qmp: QemuCommands, target: number): Promise<number> {
  const slots = await qmp.queryHotpluggableCpus();
  const present = slots.filter((s) => s['qom-path']).length;
  const free = slots.filter((s) => !s['qom-path']);
  if (target < present)
    throw new Error(`removing vCPUs from a running guest is not supported (it has ${present}); the change applies at the next boot`);
  const want = target - present;
  if (want > free.length) throw new Error(`only ${present + free.length} vCPUs fit (maxcpus); raise max vCPUs and restart`);
  // lowest socket/core first, so that CPU numbering in the guest stays dense
  free.sort((a, b) => JSON.stringify(a.props).localeCompare(JSON.stringify(b.props)));
  for (const slot of free.slice(0, want)) await qmp.addCpu(slot.type, cpuDevice(slot.props), slot.props);
  return target;
}

/** The same limits on every disk of the VM (0: none). */
export async function throttle(qmp: QemuCommands, c: Pick<VmConfig, 'disks' | 'ioBps' | 'ioIops'>): Promise<void> {
  for (let i = 0; i < c.disks.length; i++) await qmp.throttleDisk(i, { bps: c.ioBps ?? 0, iops: c.ioIops ?? 0 });
}
