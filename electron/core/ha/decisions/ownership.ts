// Who runs an HA VM, at which epoch. Every ownership move writes epoch + 1 in one etcd
// transaction that succeeds only if the record is still what the mover read, so two leaders (an
// old one that has not noticed, a new one) can never both move a VM. A host starts an HA VM only
// after reading itself as its owner at the epoch it was told: an old order never starts it.

export interface Ownership {
  owner: string;
  epoch: number;
}

/** Why `self` may not start the VM whose record is `rec` (expecting `epoch`, when told one), or null. */
export function startRefusal(self: string, rec: Ownership | null, epoch?: number): string | null {
  if (!rec) return 'no ownership record: the VM is not HA in this cluster';
  if (rec.owner !== self) return `owned by ${rec.owner} at epoch ${rec.epoch}`;
  if (epoch !== undefined && rec.epoch !== epoch) return `the order was for epoch ${epoch}, the record is at epoch ${rec.epoch}`;
  return null;
}

export function encodeOwnership(o: Ownership): string {
  return JSON.stringify({ owner: o.owner, epoch: o.epoch });
}

export function decodeOwnership(text: string | null): Ownership | null {
  if (text === null) return null;
  try {
    const o = JSON.parse(text) as Ownership;
    return typeof o.owner === 'string' && Number.isInteger(o.epoch) ? { owner: o.owner, epoch: o.epoch } : null;
  } catch {
    return null;
  }
}
