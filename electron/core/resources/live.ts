// Applying resource settings to a running QEMU through QMP: the balloon for memory, CPU
// hotplug for vCPUs, block_set_io_throttle for disk limits, block_resize for disk growth.
import type { VmConfig } from '../api/contract.js';
import { MiB } from '../api/units.js';
import type { QmpClient } from '../qemu/qmp.js';

export async function setBalloon(qmp: QmpClient, memoryMiB: number): Promise<void> {
  await qmp.execute('balloon', { value: memoryMiB * MiB });
}

interface HotpluggableCpu {
  type: string;
  props: Record<string, number>;
  'qom-path'?: string;
}

/** Adds vCPUs until `target` are present; QEMU only plugs, the guest onlines them. */
export async function hotplugCpus(qmp: QmpClient, target: number): Promise<number> {
  const slots = await qmp.execute<HotpluggableCpu[]>('query-hotpluggable-cpus');
  const present = slots.filter((s) => s['qom-path']).length;
  const free = slots.filter((s) => !s['qom-path']);
  if (target < present)
    throw new Error(`removing vCPUs from a running guest is not supported (it has ${present}); the change applies at the next boot`);
  const want = target - present;
  if (want > free.length) throw new Error(`only ${present + free.length} vCPUs fit (maxcpus); raise max vCPUs and restart`);
  // lowest socket/core first, so that CPU numbering in the guest stays dense
  free.sort((a, b) => JSON.stringify(a.props).localeCompare(JSON.stringify(b.props)));
  for (const slot of free.slice(0, want)) {
    const id = `cpu-${Object.values(slot.props).join('-')}`;
    await qmp.execute('device_add', { driver: slot.type, id, ...slot.props });
  }
  return target;
}

/** The guest agent, where there is one, onlines new vCPUs; without one the guest's own hotplug rules do. */
export async function throttle(qmp: QmpClient, c: Pick<VmConfig, 'disks' | 'ioBps' | 'ioIops'>): Promise<void> {
  for (let i = 0; i < c.disks.length; i++) {
    await qmp.execute('block_set_io_throttle', {
      // the block backend belongs to the virtio device inside the PCI proxy
      id: `/machine/peripheral/disk${i}-dev/virtio-backend`,
      bps: c.ioBps ?? 0,
      bps_rd: 0,
      bps_wr: 0,
      iops: c.ioIops ?? 0,
      iops_rd: 0,
      iops_wr: 0,
    });
  }
}

export async function growDisk(qmp: QmpClient, index: number, size: number): Promise<void> {
  await qmp.execute('block_resize', { 'node-name': `disk${index}`, size }, 30_000);
}
