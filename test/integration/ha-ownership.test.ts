// HA ownership records on a real etcd: a move is a compare-and-swap that bumps the epoch, so of
// two leaders racing to move one VM exactly one wins; a host reads itself as owner at the epoch
// it was told before it starts the VM, and an old order or a former owner is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimOwner, moveOwner, ownerRefusal, readOwner } from '../../electron/core/ha/owners-etcd';
import { EtcdCluster } from './etcd-cluster';

let etcd: EtcdCluster;
beforeAll(async () => {
  etcd = await EtcdCluster.start(1);
});
afterAll(() => etcd?.stop());

describe('HA ownership in etcd', () => {
  it('claims once, moves by compare-and-swap, and lets only the owner at the epoch start the VM', async () => {
    const a = etcd.client();
    const b = etcd.client();
    try {
      expect(await claimOwner(a, 'web', 'h1')).toBe(true);
      expect(await claimOwner(b, 'web', 'h2')).toBe(false);
      const seen = (await readOwner(a, 'web'))!;
      expect(seen).toEqual({ owner: 'h1', epoch: 1 });

      // two leaders read the same record and race: one transaction wins
      const results = await Promise.all([moveOwner(a, 'web', seen, 'h2'), moveOwner(b, 'web', seen, 'h3')]);
      const won = results.filter((r) => r !== null);
      expect(won).toHaveLength(1);
      const now = (await readOwner(a, 'web'))!;
      expect(now).toEqual(won[0]);
      expect(now.epoch).toBe(2);

      // the target starts only as owner at that epoch; the former owner and a stale order do not
      expect(await ownerRefusal(a, 'web', now.owner, 2)).toBeNull();
      expect(await ownerRefusal(a, 'web', 'h1')).toBe(`owned by ${now.owner} at epoch 2`);
      expect(await ownerRefusal(a, 'web', now.owner, 1)).toMatch(/order was for epoch 1, the record is at epoch 2/);
      expect(await moveOwner(a, 'web', seen, 'h1')).toBeNull(); // a move from a stale read never lands
      expect(await ownerRefusal(a, 'db', 'h1')).toMatch(/no ownership record/);
    } finally {
      a.close();
      b.close();
    }
  });
});
