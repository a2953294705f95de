// HA chaos with real parts (ha-cluster.ts): three hosts, each a real `corral serve` in a network
// namespace of its own with its own etcd member and fencer, a shared directory as the shared
// pool, one HA guest (the tiny guest, with a raw ext4 disk in the shared pool). An observer
// polls every process of the machine throughout and records any moment with two live QEMUs of
// the guest. Each round hits the guest's current host three ways:
// - Host death: every process of the host is SIGKILLed at once (serve, fencer, QEMU, etcd) →
//   the guest runs on another host; the dead host comes back and does not start it.
// - Partition: the host's link is cut → its fencer kills the guest at least 2 s before its
//   lease expires at the cluster (seen by an etcd watch from another host), another host starts
//   it, while the other hosts keep their own leases; the link heals → the host does not start
//   it again, and reports its real fence time.
// - Frozen host process: its `corral serve` alone is stopped (SIGSTOP; its fencer, etcd member
//   and QEMU run on) → the fencer still kills the guest 2 s before the lease expires, another
//   host starts it; SIGCONT → the host does not start it again.
// Afterwards the guest's disk, stopped, passes e2fsck -n. ROUNDS (default 3) repeats the three,
// each round on the host the guest runs on then (`npm run test:chaos` runs this file alone). Every
// wait has a deadline, and afterAll kills every process and removes the namespaces even when a
// round failed (and then keeps the hosts' logs).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { VmInfo } from '../../electron/core/api/contract';
import type { FenceRecord } from '../../electron/core/ha/fencer/protocol';
import { waitFor } from '../helpers';
import {
  A,
  B,
  byName,
  DEADLINE_MS,
  etcdOf,
  formCluster,
  freezeServe,
  guestQemus,
  haGuest,
  haStatus,
  HOSTS,
  ip,
  killHost,
  list,
  membersHealthy,
  Observer,
  ok,
  SHARED,
  startServe,
  teardown,
  thawServe,
  whereRunning,
  type HostT,
} from '../integration/ha-cluster';

const GUEST = 'g1';
const DISK = path.join(SHARED, 'g1.raw');
const ROUNDS = Math.max(1, Number(process.env.ROUNDS ?? 3));
let observer: Observer | undefined;
let vmId = '';
let epoch = 1;
let failed = false;

beforeAll(async () => {
  execFileSync('mkfs.ext4', ['-q', '-F', DISK, '32M']);
  await formCluster();
}, 400_000);

afterEach(({ task }) => {
  if (task.result?.state === 'fail') failed = true;
});

afterAll(() => {
  observer?.stop();
  teardown(failed);
}, 60_000);

type VmOn = VmInfo & { host?: { name: string } };

/**
 * The guest's host, as the processes say (one QEMU of it, and only one); every etcd member
 * healthy. Takes the guest's epoch from its owner too, so a round that failed does not throw the
 * next ones' count off.
 */
const runningOn = async () => {
  await membersHealthy();
  const owner = byName(
    (await waitFor('one QEMU of the guest', () => (guestQemus(vmId).length === 1 ? guestQemus(vmId)[0]! : null), 60_000, 200)).host,
  );
  epoch = (await haStatus(owner)).vms.find((v) => v.name === GUEST)!.epoch!;
  return owner;
};

/** The failover events of the current epoch, as the target's journal tells them. */
async function failoverEvents(target: HostT, from: string): Promise<string[]> {
  const events = JSON.parse(await ok(target, ['events', '--json'])) as Array<{ message: string }>;
  const story = events.map((e) => e.message).filter((m) => m.includes(`HA failover from host ${from} at epoch ${epoch}`));
  expect(story.length).toBeGreaterThan(0);
  for (const m of story) expect(m).toMatch(/lease expired.*fenced.*reassigned.*started/);
  return story;
}

/** Back with a fresh lease, the host finds the guest owned elsewhere and never starts it. */
async function backWithoutIt(h: HostT, target: string): Promise<void> {
  await waitFor(`${h.name} back with a fresh lease`, async () => (await haStatus(h)).startBlocker === null, 150_000, 1000);
  // give a wrong start the time to happen
  await new Promise((r) => setTimeout(r, 5000));
  expect(guestQemus(vmId).map((q) => q.host)).toEqual([target]);
  const mine = (await list(h)).filter((v) => v.name === GUEST) as VmOn[];
  expect(mine).toHaveLength(1);
  expect(mine[0]!.host?.name).toBe(target);
  expect(observer!.doubles).toEqual([]);
}

/**
 * Cuts `owner` off (`cut`) until the guest runs elsewhere: its fencer must have killed the guest
 * at least 2 s before the lease expired, as an etcd watch from another host sees it. Then `heal`.
 */
async function cutOff(owner: HostT, cut: () => () => void): Promise<{ target: string; fence: FenceRecord }> {
  const others = HOSTS.filter((h) => h !== owner);
  const etcd = etcdOf(others[0]!, others);
  const hostId = (JSON.parse(fs.readFileSync(path.join(owner.data, 'cluster', 'cluster.json'), 'utf8')) as { hostId: string }).hostId;
  const watch = await etcd.watch().prefix('/corral/ha/alive/').create();
  let expiredAt = 0;
  watch.on('delete', (kv) => {
    if (kv.key.toString().endsWith(hostId)) expiredAt = Date.now();
  });
  let heal: (() => void) | null = null;
  try {
    const cutAt = Date.now();
    heal = cut();
    const target = await whereRunning(others[0]!, owner.name, GUEST);
    const fence = JSON.parse(fs.readFileSync(path.join(owner.data, 'ha', 'fenced.json'), 'utf8')) as FenceRecord;
    expect(fence.killed.map((k) => k.vm)).toEqual([GUEST]);
    await waitFor('the lease expiry seen by the watch', () => expiredAt > 0, 60_000, 100);
    const marginMs = expiredAt - fence.at;
    console.log(`${owner.name}: fenced ${marginMs} ms before the lease expired at the cluster`);
    expect(marginMs).toBeGreaterThanOrEqual(2000);
    // one host's fault is its own: the others kept their leases throughout
    expect(fencesSince(others, cutAt)).toEqual([]);
    return { target, fence };
  } finally {
    heal?.();
    await watch.cancel().catch(() => undefined);
    etcd.close();
  }
}

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

  for (let round = 1; round <= ROUNDS; round++) {
    it(`round ${round}: restarts the guest elsewhere when its host dies; the host coming back does not start it`, async () => {
      const owner = await runningOn();
      const killedAt = Date.now();
      expect(killHost(owner)).toBeGreaterThanOrEqual(3);
      const target = await whereRunning(
        HOSTS.find((h) => h !== owner)!,
        owner.name,
        GUEST,
      );
      console.log(`${owner.name} died: the guest ran on ${target} ${(Date.now() - killedAt) / 1000} s later`);
      epoch++;
      const g = (await haStatus(byName(target))).vms.find((v) => v.name === GUEST)!;
      expect(g).toMatchObject({ owner: target, epoch });
      // a dead host reports no fence: the fence time stays the cluster's estimate, and says so
      const story = await failoverEvents(byName(target), owner.name);
      expect(story.join('\n')).toMatch(/fenced: estimated/);
      expect(story.join('\n')).not.toContain('reported by');
      expect(Date.now() - killedAt).toBeLessThan(DEADLINE_MS);
      await startServe(owner);
      await backWithoutIt(owner, target);
    }, 400_000);

    it(`round ${round}: fences a partitioned host at least 2 s before its lease expires; healed, it does not start the guest`, async () => {
      const owner = await runningOn();
      const { target, fence } = await cutOff(owner, () => {
        ip('link', 'set', owner.veth, 'down');
        return () => ip('link', 'set', owner.veth, 'up');
      });
      epoch++;
      await backWithoutIt(owner, target);
      await reportedFence(byName(target), owner, fence);
    }, 400_000);

    it(`round ${round}: a frozen host process is fenced in time by its fencer; thawed, it does not start the guest`, async () => {
      const owner = await runningOn();
      const { target, fence } = await cutOff(owner, () => {
        const pid = freezeServe(owner);
        return () => thawServe(pid);
      });
      epoch++;
      await backWithoutIt(owner, target);
      await reportedFence(byName(target), owner, fence);
    }, 400_000);
  }

  it("leaves the guest's disk clean: e2fsck -n passes once it is stopped", async () => {
    const owner = await runningOn();
    await ok(owner, ['vm', 'kill', GUEST]);
    await waitFor('no QEMU of the guest', () => guestQemus(vmId).length === 0, 60_000, 200);
    observer!.stop();
    expect(observer!.doubles).toEqual([]);
    expect(observer!.polls).toBeGreaterThan(100);
    execFileSync('e2fsck', ['-n', '-f', DISK], { stdio: 'pipe' });
  }, 120_000);
});

/** The FENCED lines the fencers of `hosts` logged since `since` (ms since the epoch). */
function fencesSince(hosts: HostT[], since: number): string[] {
  return hosts.flatMap((h) => {
    const log = path.join(h.data, 'ha', 'fencer.log');
    if (!fs.existsSync(log)) return [];
    return fs
      .readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l.includes('FENCED') && Date.parse(l.slice(0, l.indexOf(' '))) >= since)
      .map((l) => `${h.name}: ${l}`);
  });
}

/** The host that came back reported the time its fencer killed the guest: the event carries it. */
async function reportedFence(target: HostT, from: HostT, fence: FenceRecord): Promise<void> {
  const msg = await waitFor(
    'the fence time reported by the host that came back',
    async () => (await failoverEvents(target, from.name)).find((m) => m.includes(`reported by ${from.name}`)),
    60_000,
    1000,
  );
  expect(msg).toContain(`${new Date(fence.at).toISOString()} fenced: ${from.name}'s fencer killed it`);
}
