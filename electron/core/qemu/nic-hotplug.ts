// Adds a NIC to a running guest: its netdev, then a virtio-net device in a free hotplug port.
// Only kinds QEMU can make alone at run time: slirp and private networks (a passt needs its
// socket handed over at start; a bridge's helper is refused by the sandbox once running).
import type { Nic } from '../api/contract.js';
import type { QemuCommands } from './commands.js';
import * as ids from './ids.js';
import { privateGroup } from './nic-argv.js';

export async function hotAddNic(qmp: QemuCommands, nic: Nic, hostKey: string): Promise<void> {
  const id = ids.netdev(nic.id);
  if (nic.kind === 'user')
    await qmp.netdevAdd({
      type: 'user',
      id,
      hostfwd: nic.forwards.map((f) => ({ str: `${f.proto}:${f.hostAddr}:${f.hostPort}-:${f.guestPort}` })),
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
