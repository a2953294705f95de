// MAC addresses: each VM gets its own, in QEMU's locally administered prefix 52:54:00, so that
// two guests (a clone and its source) never share one on a network.
import { randomBytes } from 'node:crypto';
import type { VmRepo } from '../store/vm-repo.js';

/** A MAC no VM of this host has (from the system's randomness: tests' seeded randoms repeat). */
export function newMac(vms: Pick<VmRepo, 'list'>): string {
  const taken = new Set(vms.list().map((v) => v.config.mac));
  for (;;) {
    const mac = `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
    if (!taken.has(mac)) return mac;
  }
}
