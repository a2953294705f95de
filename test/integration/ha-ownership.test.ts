// HA ownership records on a real etcd: a move is a compare-and-swap that bumps the epoch, so of
// two leaders racing to move one VM exactly one wins; a host reads itself as owner at the epoch
// it was told before it starts the VM, and an old order or a former owner is refused. A VM that
// migrated in takes its record along (HaHost.arrived); the target's "started" and the fenced
// host's report of its fence time, written at once, both land in the failover record.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostDirectory } from '../../electron/core/cluster/directory';
import { appendStep, updateFailover, withReportedFence } from '../../electron/core/cluster/ha-failover-store';
import { HaHost } from '../../electron/core/cluster/ha-host';
import { parseFailover, type Failover } from '../../electron/core/cluster/ha-records';
import type { Inventory } from '../../electron/core/cluster/inventory';
import { keys } from '../../electron/core/cluster/keys';
import { claimOwner, moveOwner, ownerRefusal, readOwner } from '../../electron/core/ha/owners-etcd';
import type { Vms } from '../../electron/core/vms';
import { tempDir } from '../helpers';
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

/**
 * A host's HA side over the real etcd, with only what arrived() reads of the VM layer: the VMs
 * here and their HA setting. Nothing is started (no lease, no watches, no fencer).
 */
function hostWith(etcd: ReturnType<EtcdCluster['client']>, hostId: string, vms: Record<string, boolean>, log: string[]): HaHost {
  const get = (id: string) => {
    if (!(id in vms)) throw new Error(`no VM ${id}`);
    return { id, name: id, config: { ha: { enabled: vms[id] } } };
  };
  return new HaHost({
    etcd,
    hostId,
    dataDir: tempDir('corral-ha-arrived-'),
    vms: { service: { get } } as unknown as Vms,
    directory: {} as HostDirectory,
    inventory: {} as Inventory,
    log: (l) => log.push(l),
    migrate: () => Promise.reject(new Error('this test migrates nothing')),
  });
}

describe('an HA VM that migrated in (HaHost.arrived)', () => {
  it("moves the VM's record to the host it arrived on, at epoch + 1, once", async () => {
    const a = etcd.client();
    const log: string[] = [];
    try {
      expect(await claimOwner(a, 'mig', 'h1')).toBe(true);
      const h2 = hostWith(a, 'h2', { mig: true, plain: false, fresh: true }, log);
      await h2.arrived('mig');
      expect(await readOwner(a, 'mig')).toEqual({ owner: 'h2', epoch: 2 });
      // told twice (a retried handler): already ours, the epoch stays
      await h2.arrived('mig');
      expect(await readOwner(a, 'mig')).toEqual({ owner: 'h2', epoch: 2 });
      // the host it left can no longer start it
      expect(await ownerRefusal(a, 'mig', 'h1')).toBe('owned by h2 at epoch 2');
      // an HA VM with no record yet gets one here; a VM that is not HA gets none
      await h2.arrived('fresh');
      expect(await readOwner(a, 'fresh')).toEqual({ owner: 'h2', epoch: 1 });
      await h2.arrived('plain');
      expect(await readOwner(a, 'plain')).toBeNull();
      expect(log).toEqual([]);
    } finally {
      a.close();
    }
  });

  it('takes the record over from a move that raced it: the later epoch wins, never a stale one', async () => {
    const a = etcd.client();
    try {
      expect(await claimOwner(a, 'race', 'h1')).toBe(true);
      // a leader moved it to h3 (epoch 2) just before it arrived on h2: h2 reads again and moves it on
      await moveOwner(a, 'race', { owner: 'h1', epoch: 1 }, 'h3');
      await hostWith(a, 'h2', { race: true }, []).arrived('race');
      expect(await readOwner(a, 'race')).toEqual({ owner: 'h2', epoch: 3 });
    } finally {
      a.close();
    }
  });
});

describe('a failover record written by two hosts at once', () => {
  it("keeps both the target's start and the fenced host's report of its fence time", async () => {
    const a = etcd.client();
    const b = etcd.client();
    try {
      const f: Failover = {
        vmId: 'v1',
        vm: 'web',
        from: 'h1',
        to: 'h2',
        epoch: 2,
        timeline: [
          { at: 10_000, what: 'lease expired', detail: 'h1 stopped renewing its HA lease' },
          { at: 7000, what: 'fenced', detail: 'estimated: h1 fences by its deadline' },
          { at: 10_100, what: 'reassigned', detail: 'to h2 at epoch 2' },
        ],
      };
      await a.put(keys.haFailover('v1')).value(JSON.stringify(f));
      const fence = { at: 6400, deadlineMs: 1, firedMs: 1, killed: [{ vm: 'web', pid: 4242, startTime: '1' }], gone: [] };
      await Promise.all([
        updateFailover(a, 'v1', 2, appendStep({ at: 12_000, what: 'started', detail: 'running on h2' })),
        updateFailover(b, 'v1', 2, (cur) => withReportedFence(cur, fence, 'h1')),
      ]);
      const now = parseFailover((await a.get(keys.haFailover('v1')).string())!)!;
      expect(now.timeline.map((s) => s.what)).toEqual(['lease expired', 'fenced', 'reassigned', 'started']);
      expect(now.timeline[1]).toEqual({
        at: 6400,
        what: 'fenced',
        detail: "h1's fencer killed it (pid 4242), 3.6 s before its lease expired at the cluster (reported by h1 when it came back)",
      });
      // reported once; a record of another epoch is left alone
      expect(await updateFailover(a, 'v1', 2, (cur) => withReportedFence(cur, fence, 'h1'))).toBeNull();
      expect(await updateFailover(a, 'v1', 3, appendStep({ at: 1, what: 'started', detail: 'x' }))).toBeNull();
      // a fence that did not touch this VM says nothing about it
      expect(withReportedFence(f, { ...fence, killed: [{ vm: 'db', pid: 1, startTime: '1' }] }, 'h1')).toBeNull();
    } finally {
      a.close();
      b.close();
    }
  });
});
