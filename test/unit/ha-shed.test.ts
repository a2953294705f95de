// Load shedding's pieces that need no cluster: the balancer's held VMs and refusing targets, the
// guests' load book, the tunables from the environment, the move records, and the leader's
// shedder on a clock of its own: one move at a time, a wait for figures that show the last
// move, a failed move resting its VM too.
import type { Etcd3 } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { BALANCE_DEFAULTS, Balancer } from '../../electron/core/ha/decisions/balance';
import type { HaVm, HostView } from '../../electron/core/ha/decisions/model';
import { HA_DEFAULTS } from '../../electron/core/ha/decisions/model';
import { balanceOptions } from '../../electron/core/cluster/ha-balancing';
import { LoadShedder, ROUND_MS } from '../../electron/core/cluster/ha-shed';
import type { HostAlive } from '../../electron/core/cluster/hosts';
import { parseShed, type ShedRecord } from '../../electron/core/cluster/shed-records';
import { GuestLoadBook } from '../../electron/core/resources/guest-load';

const host = (id: string, memUsedMiB: number, extra: Partial<HostView> = {}): HostView => ({
  id,
  alive: true,
  memMiB: 1000,
  cpus: 2,
  memUsedMiB,
  cpuUsed: 0,
  ...extra,
});
const vm = (name: string, owner: string, extra: Partial<HaVm> = {}): HaVm & { id: string } => ({
  id: `id-${name}`,
  name,
  owner,
  epoch: 1,
  memMiB: 100,
  cpus: 1,
  ha: { ...HA_DEFAULTS, enabled: true },
  memUsedMiB: 100,
  cpuUsed: 0,
  ...extra,
});
const busy = () => ({
  hosts: [host('a', 300), host('b', 0), host('c', 0)],
  vms: [vm('v1', 'a'), vm('v2', 'a'), vm('v3', 'a')],
});

describe('the balancer', () => {
  it('holds VMs that cannot migrate, rest in their cooldown or no host can run, and says why', () => {
    const b = new Balancer({ ...BALANCE_DEFAULTS, holdMs: 0 });
    b.moved('v2', 1000);
    const { hosts, vms } = busy();
    vms[0] = vm('v1', 'a', { cannotMove: 'it has a TPM' });
    vms.push(vm('v4', 'a'));
    hosts[1] = host('b', 0, { cannotRun: { v3: 'no CPU model "EPYC"', v4: 'no bridge br0' } });
    hosts[2] = host('c', 0, { cannotRun: { v4: 'passt is not installed' } });
    const r = b.round(61_000, hosts, vms, (id) => `host-${id}`);
    expect(r.held).toEqual([
      { vm: 'v1', why: 'it has a TPM' },
      { vm: 'v2', why: 'moved 60 s ago: rests 1740 s more (cooldown 1800 s)' },
      { vm: 'v4', why: 'no host can take it (host-b: no bridge br0; host-c: passt is not installed)' },
    ]);
    // v3 may go, but only to c (b's QEMU cannot run it)
    expect(r.proposal).toMatchObject({ vm: 'v3', from: 'a', to: 'c' });
    expect(r.after).toBeLessThan(r.imbalance);
    expect(r.why).toMatch(/^imbalance 1 → 0\.\d+ \(−\d+ %\)/);
  });

  it('names hosts in its reasons', () => {
    const b = new Balancer({ ...BALANCE_DEFAULTS, hardMemLimit: 0.2 });
    const r = b.round(0, [host('a', 300), host('b', 0)], [vm('v1', 'a'), vm('v2', 'a'), vm('v3', 'a')], (id) => `host-${id}`);
    expect(r.proposal?.why).toBe('host-a uses over 20 % of its memory');
  });
});

describe('the guests load book', () => {
  it('sums the running guests, averages CPU over the last samples, and forgets guests that stopped', () => {
    const book = new GuestLoadBook();
    const s = (vmId: string, cpuPercent: number, rssBytes: number) =>
      ({ vmId, at: 0, cpuPercent, rssBytes, balloonBytes: null, diskReadBps: 0, diskWriteBps: 0, netRxBps: null, netTxBps: null }) as const;
    book.add([s('x', 100, 100), s('y', 20, 50)]);
    book.add([s('x', 0, 300)]);
    expect(book.now(['x', 'y'])).toEqual({
      memBytes: 350,
      cpu: 0.7,
      vms: { x: { memBytes: 300, cpu: 0.5 }, y: { memBytes: 50, cpu: 0.2 } },
    });
    // y stopped: gone; z runs but has no sample yet: left out
    expect(book.now(['x', 'z'])).toEqual({ memBytes: 300, cpu: 0.5, vms: { x: { memBytes: 300, cpu: 0.5 } } });
  });
});

describe('the tunables', () => {
  it('are the shipped defaults unless the environment gives some of them', () => {
    expect(balanceOptions({})).toEqual(BALANCE_DEFAULTS);
    const o = balanceOptions({ CORRAL_HA_BALANCE_OPTIONS: '{"holdMs":5000,"cooldownMs":60000,"threshold":-1,"bogus":3}' });
    expect(o).toEqual({ ...BALANCE_DEFAULTS, holdMs: 5000, cooldownMs: 60_000 });
  });
});

describe('the move records', () => {
  it('are parsed defensively', () => {
    expect(parseShed('not json')).toBeNull();
    expect(parseShed('{"vmId":"x"}')).toBeNull();
    const r = { vmId: 'x', vm: 'v', from: 'a', to: 'b', at: 1, endedAt: null, outcome: 'moving' };
    expect(parseShed(JSON.stringify(r))).toMatchObject(r);
    expect(parseShed(JSON.stringify({ ...r, outcome: 'lost' }))).toBeNull();
  });
});

/** An etcd that keeps puts in a map (all the shedder writes), with the cluster's balancing flag. */
function memoryEtcd(records: Map<string, ShedRecord>, flag: { value: string }): Etcd3 {
  const put = (key: string) => ({
    value: (v: string) => {
      const run = () => void records.set(key, parseShed(v)!);
      // like etcd3's builders: runs when awaited, or inside a transaction
      return { run, then: (ok: () => void, bad: (e: unknown) => void) => Promise.resolve().then(run).then(ok, bad) };
    },
  });
  return {
    put,
    if: (_key: string, _column: string, _cmp: string, want: string) => ({
      then: (op: { run(): void }) => ({
        commit: async () => {
          const succeeded = flag.value === want;
          if (succeeded) op.run();
          return { succeeded };
        },
      }),
    }),
  } as unknown as Etcd3;
}

describe('the leader shedder', () => {
  function setup(migrate: (from: string, vm: string, to: string) => Promise<unknown>) {
    let now = 100_000;
    const records = new Map<string, ShedRecord>();
    const view = busy();
    const load: Record<string, HostAlive['load']> = {};
    const calls: string[] = [];
    const flag = { value: 'on' };
    const s = new LoadShedder({
      etcd: memoryEtcd(records, flag),
      isLeader: () => true,
      enabled: () => true,
      snapshot: () => view,
      records: () => [...records.values()],
      loadOf: (id) => load[id],
      migrate: async (from, vmId, to) => {
        calls.push(`${vmId} ${from}→${to}`);
        return await migrate(from, vmId, to);
      },
      hostName: (id) => id,
      log: () => undefined,
      opts: { ...BALANCE_DEFAULTS, holdMs: 0, cooldownMs: 600_000 },
      now: () => now,
    });
    const step = async (ms = ROUND_MS) => {
      now += ms;
      await s.tick();
      await s.settle();
    };
    return { s, records, view, load, calls, step, flag };
  }

  it('moves one VM per round, waits for figures that show it, and never moves it again in its cooldown', async () => {
    const t = setup(async () => undefined);
    await t.step();
    expect(t.calls).toHaveLength(1);
    const first = [...t.records.values()][0]!;
    expect(first).toMatchObject({ outcome: 'moved', from: 'a' });
    expect(first.before).toBeCloseTo(1, 6);
    expect(first.loads).toHaveProperty('a');
    // the hosts have not published figures showing the move yet: the next round waits
    await t.step();
    expect(t.calls).toHaveLength(1);
    t.load[first.to] = { memBytes: 1, cpu: 0, vms: { [first.vmId]: { memBytes: 1, cpu: 0 } } };
    t.load.a = { memBytes: 1, cpu: 0, vms: {} };
    const moved = t.view.vms.find((v) => v.id === first.vmId)!;
    moved.owner = first.to;
    t.view.hosts.find((h) => h.id === 'a')!.memUsedMiB = 200;
    t.view.hosts.find((h) => h.id === first.to)!.memUsedMiB = 100;
    await t.step();
    expect(t.calls).toHaveLength(2);
    expect(t.calls[1]).not.toMatch(new RegExp(`^${first.vmId}`));
  });

  it('starts no move once the flag in etcd says off, though its own copy still says on', async () => {
    const t = setup(async () => undefined);
    t.flag.value = 'off';
    await t.step();
    expect(t.calls).toEqual([]);
    expect(t.records.size).toBe(0);
    t.flag.value = 'on';
    await t.step();
    expect(t.calls).toHaveLength(1);
  });

  it('rests a VM whose move failed for its cooldown too', async () => {
    const t = setup(async () => {
      throw new Error('the target refused it');
    });
    await t.step();
    const [r] = [...t.records.values()];
    expect(r).toMatchObject({ outcome: 'failed', error: 'the target refused it' });
    await t.step();
    expect(t.calls).toHaveLength(2);
    expect(t.calls[1]!.split(' ')[0]).not.toBe(r!.vmId);
  });

  it('starts nothing while a move is under way in the cluster (another leader started it)', async () => {
    const t = setup(async () => undefined);
    t.records.set('x', {
      vmId: 'id-v1',
      vm: 'v1',
      from: 'a',
      to: 'b',
      at: 100_000,
      endedAt: null,
      outcome: 'moving',
      why: '',
      before: 1,
      after: 0.5,
      loads: {},
      error: null,
    });
    await t.step();
    expect(t.calls).toEqual([]);
  });
});
