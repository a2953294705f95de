// HA chaos with real parts (ha-cluster.ts): three hosts, each a real `corral serve` in a network
// namespace of its own with its own etcd member and fencer, a shared directory as the shared
// pool, one HA guest (the tiny guest, with a raw ext4 disk in the shared pool). An observer
// polls every process of the machine throughout and records any moment with two live QEMUs of
// the guest.
// - Host death: every process of the guest's host is SIGKILLed at once (serve, fencer, QEMU,
//   etcd) → the guest runs on another host; the dead host comes back and does not start it.
// - Partition: the owner's link is cut → its fencer kills the guest at least 2 s before its
//   lease expires at the cluster (seen by an etcd watch from another host), another host starts
//   it; the link heals → the partitioned host does not start it again.
// Afterwards the guest's disk, stopped, passes e2fsck -n.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmInfo } from '../../electron/core/api/contract';
import { waitFor } from '../helpers';
import {
  A,
  B,
  byName,
  DEADLINE_MS,
  etcdOf,
  formCluster,
  guestQemus,
  haGuest,
  haStatus,
  HOSTS,
  ip,
  killHost,
  list,
  Observer,
  ok,
  SHARED,
  startServe,
  teardown,
  whereRunning,
} from '../integration/ha-cluster';

const GUEST = 'g1';
const DISK = path.join(SHARED, 'g1.raw');
let observer: Observer;
let vmId = '';

beforeAll(async () => {
  execFileSync('mkfs.ext4', ['-q', '-F', DISK, '32M']);
  await formCluster();
}, 400_000);

afterAll(() => {
  observer?.stop();
  teardown();
}, 60_000);

describe('HA chaos on three hosts', () => {
  it('makes a guest on the shared pool HA and runs it, guarded by its host', async () => {
    vmId = await haGuest(A, GUEST, 'g1.raw');
    observer = new Observer(vmId);
    observer.start();
    const s = await waitFor(
      'the owner record',
      async () => (await haStatus(B)).vms.find((v) => v.name === GUEST && v.owner === 'a'),
      60_000,
      500,
    );
    expect(s.epoch).toBe(1);
    expect(guestQemus(vmId).map((q) => q.host)).toEqual(['a']);
  }, 300_000);

  it('restarts the guest elsewhere when its host dies, and the host coming back does not start it', async () => {
    const killedAt = Date.now();
    expect(killHost(A)).toBeGreaterThanOrEqual(3);
    const now = await whereRunning(B, 'a', GUEST);
    const took = (Date.now() - killedAt) / 1000;
    const target = byName(now);
    const st = await haStatus(target);
    const g = st.vms.find((v) => v.name === GUEST)!;
    expect(g).toMatchObject({ owner: now, epoch: 2 });
    // the failover is in the guest's events with its timeline
    const events = JSON.parse(await ok(target, ['events', '--json'])) as Array<{ message: string }>;
    const story = events.find((e) => /HA failover from host a at epoch 2/.test(e.message));
    expect(story?.message).toMatch(/lease expired.*fenced.*reassigned.*started/);
    expect(took).toBeLessThan(DEADLINE_MS / 1000);

    await startServe(A);
    await waitFor('a back and holding its HA lease', async () => (await haStatus(A)).startBlocker === null, 150_000, 1000);
    // a's stale record is gone, the guest runs once, on the target
    expect((await ok(A, ['vm', 'list', '--json'])).length).toBeGreaterThan(0);
    const fromA = (await list(A)).filter((v) => v.name === GUEST);
    expect(fromA).toHaveLength(1);
    expect((fromA[0] as VmInfo & { host?: { name: string } }).host?.name).toBe(now);
    expect(guestQemus(vmId).map((q) => q.host)).toEqual([now]);
    expect(observer.doubles).toEqual([]);
  }, 400_000);

  it('fences a partitioned owner at least 2 s before its lease expires; after the heal it does not start the guest', async () => {
    const owner = byName((await haStatus(B)).vms.find((v) => v.name === GUEST)!.owner!);
    const others = HOSTS.filter((h) => h !== owner);
    const etcd = etcdOf(others[0]!, others);
    const watch = await etcd.watch().prefix('/corral/ha/alive/').create();
    let expiredAt = 0;
    watch.on('delete', (kv) => {
      if (kv.key.toString().endsWith(JSON.parse(fs.readFileSync(path.join(owner.data, 'cluster', 'cluster.json'), 'utf8')).hostId))
        expiredAt = Date.now();
    });
    try {
      ip('link', 'set', owner.veth, 'down');
      const now = await whereRunning(others[0]!, owner.name, GUEST);
      expect(now).not.toBe(owner.name);
      const fence = JSON.parse(fs.readFileSync(path.join(owner.data, 'ha', 'fenced.json'), 'utf8')) as {
        at: number;
        killed: Array<{ vm: string }>;
      };
      expect(fence.killed.map((k) => k.vm)).toEqual([GUEST]);
      await waitFor('the lease expiry seen by the watch', () => expiredAt > 0, 60_000, 100);
      const marginMs = expiredAt - fence.at;
      console.log(`partition: fenced ${marginMs} ms before the lease expired at the cluster`);
      expect(marginMs).toBeGreaterThanOrEqual(2000);
    } finally {
      ip('link', 'set', owner.veth, 'up');
      await watch.cancel().catch(() => undefined);
      etcd.close();
    }
    // healed: the owner takes a fresh lease, finds the guest owned elsewhere, never starts it
    await waitFor(`${owner.name} back with a fresh lease`, async () => (await haStatus(owner)).startBlocker === null, 120_000, 1000);
    await new Promise((r) => setTimeout(r, 5000));
    const q = guestQemus(vmId);
    expect(q).toHaveLength(1);
    expect(q[0]!.host).not.toBe(owner.name);
    const mine = (await list(owner)).find((v) => v.name === GUEST) as VmInfo & { host?: { name: string } };
    expect(mine.host?.name).not.toBe(owner.name);
    expect(observer.doubles).toEqual([]);
    expect(observer.polls).toBeGreaterThan(100);
  }, 400_000);

  it("leaves the guest's disk clean: e2fsck -n passes once it is stopped", async () => {
    // where the guest runs, as the processes say (a host's HA view may lag a moment after the heal)
    const running = await waitFor(
      'one QEMU of the guest',
      () => (guestQemus(vmId).length === 1 ? guestQemus(vmId)[0]! : null),
      60_000,
      200,
    );
    const owner = byName(running.host);
    await ok(owner, ['vm', 'kill', GUEST]);
    await waitFor('no QEMU of the guest', () => guestQemus(vmId).length === 0, 60_000, 200);
    observer.stop();
    expect(observer.doubles).toEqual([]);
    execFileSync('e2fsck', ['-n', '-f', DISK], { stdio: 'pipe' });
  }, 120_000);
});
