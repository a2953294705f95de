// MAC addresses: each VM gets its own, in QEMU's locally administered prefix 52:54:00, so that
// two guests (a clone and its source) never share one on a network.
import type { VmRepo } from '../store/vm-repo.js';

/** A MAC no VM of this host has. */
export function newMac(vms: Pick<VmRepo, 'list'>, random: () => number = Math.random): string {
  const taken = new Set(vms.list().map((v) => v.config.mac));
  for (;;) {
    const tail = Array.from({ length: 3 }, () =>
      Math.floor(random() * 256)
        .toString(16)
        .padStart(2, '0'),
    );
    const mac = `52:54:00:${tail.join(':')}`;
    if (!taken.has(mac)) return mac;
  }
}
