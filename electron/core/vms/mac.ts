// MAC addresses: each NIC gets its own, in QEMU's locally administered prefix 52:54:00, so that
// two guests (a clone and its source) never share one on a network.
import type { Nic } from '../api/contract.js';
import type { VmRepo } from '../store/vm-repo.js';
import { randomMac } from './nic-config.js';

function takenMacs(vms: Pick<VmRepo, 'list'>): Set<string> {
  return new Set(vms.list().flatMap((v) => v.config.nics.map((n) => n.mac)));
}

/** A MAC no NIC of this host has (from the system's randomness: tests' seeded randoms repeat). */
export function newMac(vms: Pick<VmRepo, 'list'>, also: ReadonlySet<string> = new Set()): string {
  const taken = takenMacs(vms);
  for (;;) {
    const mac = randomMac();
    if (!taken.has(mac) && !also.has(mac)) return mac;
  }
}

/** The same NICs, each with a MAC of its own that no NIC of this host has: a copy of a machine. */
export function withNewMacs(nics: readonly Nic[], vms: Pick<VmRepo, 'list'>): Nic[] {
  const picked = new Set<string>();
  return nics.map((n) => {
    const mac = newMac(vms, picked);
    picked.add(mac);
    return { ...n, mac };
  });
}

/** Whether any of these NICs' MACs is already on a NIC of this host. */
export function macsTaken(nics: readonly Nic[], vms: Pick<VmRepo, 'list'>): boolean {
  const taken = takenMacs(vms);
  return nics.some((n) => taken.has(n.mac));
}
