// Adds a NIC to a running guest: its netdev, then a virtio-net device in a free hotplug port.
// Only kinds QEMU can make alone at run time: slirp and private networks (a passt needs its
// socket handed over at start; a bridge's helper is refused by the sandbox once running).
// Removes one the same way back, and changes a slirp NIC's forwards in place.
import type { Nic, PortForward } from '../api/contract.js';
import type { QemuCommands } from './commands.js';
import type { QmpEvent } from './qmp.js';
import * as ids from './ids.js';
import { privateGroup } from './nic-argv.js';

/** slirp's spelling of a forward: hostfwd_add takes the whole rule, hostfwd_remove the host side. */
export const slirpRule = (f: PortForward) => `${f.proto}:${f.hostAddr}:${f.hostPort}-:${f.guestPort}`;
const slirpHostSide = (f: PortForward) => `${f.proto}:${f.hostAddr}:${f.hostPort}`;

export async function hotAddNic(qmp: QemuCommands, nic: Nic, hostKey: string): Promise<void> {
  const id = ids.netdev(nic.id);
  if (nic.kind === 'user')
    await qmp.netdevAdd({
      type: 'user',
      id,
      hostfwd: nic.forwards.map((f) => ({ str: slirpRule(f) })),
    });
  else if (nic.kind === 'private') {
    const g = privateGroup(hostKey, nic.network ?? '');
    await qmp.netdevAdd({ type: 'socket', id, mcast: `${g.addr}:${g.port}`, localaddr: '127.0.0.1' });
  } else throw new Error(`a ${nic.kind} NIC can only be added while the VM is stopped`);
  let last: unknown = null;
  for (const bus of ids.NIC_HOTPLUG_PORTS) {
    try {
      await qmp.addNicDevice({ driver: 'virtio-net-pci', id: ids.nicDevice(nic.id), netdev: id, mac: nic.mac, bus });
      return;
    } catch (err) {
      last = err; // that port is taken: the next
    }
  }
  await qmp.netdevDel(id).catch(() => undefined);
  throw new Error(`no free hotplug port for ${nic.id} (${String((last as Error)?.message ?? last)}): it is added at the next boot`);
}

/** A guest under TCG and load can take a while to answer the hotplug controller. */
const UNPLUG_MS = 60_000;

/**
 * Unplugs a NIC added while the guest ran: device_del, then the guest lets go of the device
 * (DEVICE_DELETED), then its netdev goes. A guest that never answers keeps the NIC.
 */
export async function hotRemoveNic(
  machine: { qmp: QemuCommands; onEvent(fn: (ev: QmpEvent) => void): void },
  nic: Pick<Nic, 'id'>,
  timeoutMs = UNPLUG_MS,
): Promise<void> {
  const dev = ids.nicDevice(nic.id);
  let done: (gone: boolean) => void = () => undefined;
  const gone = new Promise<boolean>((resolve) => (done = resolve));
  const timer = setTimeout(() => done(false), timeoutMs);
  machine.onEvent((e) => {
    if (e.event === 'DEVICE_DELETED' && e.data?.device === dev) done(true);
  });
  try {
    await machine.qmp.deleteDevice(dev);
    if (!(await gone))
      throw new Error(
        `the guest did not let go of ${nic.id} within ${timeoutMs / 1000} s (it may lack PCIe hotplug): it goes at the next boot`,
      );
  } finally {
    clearTimeout(timer);
  }
  await machine.qmp.netdevDel(ids.netdev(nic.id));
}

/** Changes a running slirp NIC's forwards: the ones gone first (their ports free), then the new. */
export async function updateSlirpForwards(qmp: QemuCommands, nicId: string, from: readonly PortForward[], to: readonly PortForward[]) {
  const id = ids.netdev(nicId);
  const rules = new Set(to.map(slirpRule));
  const had = new Set(from.map(slirpRule));
  for (const f of from) if (!rules.has(slirpRule(f))) await qmp.slirpForwardRemove(id, slirpHostSide(f));
  for (const f of to) if (!had.has(slirpRule(f))) await qmp.slirpForwardAdd(id, slirpRule(f));
}
