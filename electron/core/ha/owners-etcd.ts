// HA ownership records in etcd (decisions/ownership.ts says what they mean), one per HA VM id.
// The cluster layer's cluster/keys.ts names every key; these are the HA part of its layout.
import type { Etcd3 } from 'etcd3';
import { decodeOwnership, encodeOwnership, startRefusal, type Ownership } from './decisions/ownership';

export const HA_PREFIX = '/corral/ha/';
export const ownerKey = (vm: string) => `${HA_PREFIX}owners/${vm}`;

export async function readOwner(etcd: Etcd3, vm: string): Promise<Ownership | null> {
  return decodeOwnership(await etcd.get(ownerKey(vm)).string());
}

/** Creates the record of a VM made HA (epoch 1); false if one exists already. */
export async function claimOwner(etcd: Etcd3, vm: string, owner: string): Promise<boolean> {
  const key = ownerKey(vm);
  const res = await etcd
    .if(key, 'Create', '==', 0)
    .then(etcd.put(key).value(encodeOwnership({ owner, epoch: 1 })))
    .commit();
  return res.succeeded;
}

/**
 * Moves `vm` from the record `seen` to `to` at epoch seen.epoch + 1, only if the record is still
 * `seen`. Returns the new record, or null when someone else moved it first.
 */
export async function moveOwner(etcd: Etcd3, vm: string, seen: Ownership, to: string): Promise<Ownership | null> {
  const key = ownerKey(vm);
  const next = { owner: to, epoch: seen.epoch + 1 };
  const res = await etcd
    .if(key, 'Value', '==', encodeOwnership(seen))
    .then(etcd.put(key).value(encodeOwnership(next)))
    .commit();
  return res.succeeded ? next : null;
}

/** Why this host may not start `vm` now (see startRefusal), read fresh from etcd. */
export async function ownerRefusal(etcd: Etcd3, vm: string, self: string, epoch?: number): Promise<string | null> {
  return startRefusal(self, await readOwner(etcd, vm), epoch);
}
