// Each NIC's -netdev and virtio-net device. The device ids and MACs never change for a NIC, so
// the guest sees the same card at every boot.
import { createHash } from 'node:crypto';
import type { Nic } from '../api/contract.js';
import { json, optValue, opts } from './escape.js';
import * as ids from './ids.js';

/** Where qemu-bridge-helper is (Debian's path); tests and other layouts override it. */
export const BRIDGE_HELPER = process.env.CORRAL_BRIDGE_HELPER ?? '/usr/lib/qemu/qemu-bridge-helper';

export interface NicPlan {
  /** The fd of the socket QEMU listens on for each passt NIC's passt (see passt.ts). */
  passtFds: ReadonlyMap<string, number>;
  /** Keys private networks to this host: another data dir's network of the same name is another network. */
  hostKey: string;
}

/**
 * A private network's multicast group and port on loopback, from its name and the host.
 * Every VM of the network sends to the group; the kernel keeps it on `lo`, so nothing leaves
 * the machine and nothing routes out of it.
 */
export function privateGroup(hostKey: string, network: string): { addr: string; port: number } {
  const h = createHash('sha256').update(`${hostKey}\0${network}`).digest();
  return { addr: `239.255.${h[0]}.${h[1]! === 0 ? 1 : h[1]}`, port: 20000 + (h.readUInt16BE(2) % 40000) };
}

export function netdevArg(nic: Nic, plan: NicPlan): string {
  const id = ids.netdev(nic.id);
  switch (nic.kind) {
    case 'user': {
      const fwd = nic.forwards.map((f) => `hostfwd=${optValue(`${f.proto}:${f.hostAddr}:${f.hostPort}-:${f.guestPort}`)}`);
      return ['user', `id=${id}`, ...fwd].join(',');
    }
    case 'passt': {
      // QEMU listens, passt connects: a new passt can take over the NIC while the guest runs
      const fd = plan.passtFds.get(nic.id);
      if (fd === undefined) throw new Error(`no passt socket for ${nic.id}`);
      return opts('stream', { id, server: true, 'addr.type': 'fd', 'addr.str': String(fd) });
    }
    case 'bridge':
      return opts('bridge', { id, br: nic.bridge ?? '', helper: BRIDGE_HELPER });
    case 'private': {
      const g = privateGroup(plan.hostKey, nic.network ?? '');
      return opts('socket', { id, mcast: `${g.addr}:${g.port}`, localaddr: '127.0.0.1' });
    }
  }
}

export function nicDeviceArg(nic: Nic): string {
  return json({ driver: 'virtio-net-pci', netdev: ids.netdev(nic.id), id: ids.nicDevice(nic.id), mac: nic.mac });
}

export function nicsArgv(nics: readonly Nic[], plan: NicPlan): string[] {
  return nics.flatMap((nic) => ['-netdev', netdevArg(nic, plan), '-device', nicDeviceArg(nic)]);
}
