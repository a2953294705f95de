// The virtual hardware a VM is pinned to (machine type, CPU model) against what this host's
// QEMU can build. A VM keeps its hardware across QEMU upgrades and hosts; where that is not
// possible, the start is refused with what is missing, never quietly given other hardware.
import type { VmConfig } from '../api/contract.js';
import { HOST_CPU_MODEL } from '../api/rules.js';
import type { MachineCatalog } from './probe.js';

export interface HardwareHost extends MachineCatalog {
  version: string;
  accel: 'kvm' | 'tcg';
}

/** Why this QEMU cannot build the VM's hardware, or null. CPU features are QEMU's to check (-cpu …,enforce). */
export function hardwareProblem(c: Pick<VmConfig, 'machineType' | 'cpuModel' | 'firmware'>, host: HardwareHost): string | null {
  const type = c.machineType;
  if (type && !host.machineTypes.includes(type)) {
    const q35 = host.machineTypes.filter((t) => t.startsWith('pc-q35-')).sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
    return (
      `this VM is pinned to the machine type ${type}, which QEMU ${host.version} on this host lacks ` +
      `(it has ${q35.slice(0, 3).join(', ')}${q35.length > 3 ? ', …' : ''}): run it on a host with a QEMU that has ${type}, ` +
      `or change its machine type (its guest then sees different hardware)`
    );
  }
  if (type && c.firmware !== 'bios' && !type.startsWith('pc-q35-') && type !== 'q35')
    return `UEFI firmware needs a q35 machine type, not ${type}`;
  if (c.cpuModel === HOST_CPU_MODEL && host.accel !== 'kvm')
    return 'the CPU model "host" (passthrough) needs KVM, which this host does not use: choose a named CPU model';
  if (c.cpuModel !== HOST_CPU_MODEL && !host.cpuModels.includes(c.cpuModel))
    return `this VM's CPU model ${c.cpuModel} is unknown to QEMU ${host.version} on this host: run it on a host whose QEMU has it, or choose another CPU model`;
  return null;
}
