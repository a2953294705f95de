// The snapshot tree's rules and the schedule, on a real SQLite store and the fake clock: the
// order and depths shown, re-parenting on delete ("you are here" included), retention that
// removes only the oldest scheduled snapshots, and a failed scheduled snapshot reported.
import { describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS, type SnapshotInfo, type VmConfig } from '../../electron/core/api/contract';
import { openDb } from '../../electron/core/store/db';
import { SnapshotRepo } from '../../electron/core/store/snapshot-repo';
import { VmRepo, type VmRecord } from '../../electron/core/store/vm-repo';
import { SnapshotScheduler } from '../../electron/core/vms/snapshot-schedule';
import { findSnapshot, restoredConfig, retentionVictims, scheduledName, treeOrder } from '../../electron/core/vms/snapshot-tree';
import type { CreateOptions } from '../../electron/core/vms/snapshots';
import { FakeClock } from '../support/fake-clock';

const config: VmConfig = { ...CONFIG_DEFAULTS, disks: [{ path: '/pool/a.qcow2', format: 'qcow2', owned: true }] };

function snap(id: string, parentId: string | null, createdAt: number, extra: Partial<SnapshotInfo> = {}): SnapshotInfo {
  return {
    id,
    vmId: 'vm1',
    parentId,
    name: id,
    description: '',
    createdAt,
    hasRam: true,
    kind: 'live',
    consistency: 'full',
    pauseMs: 10,
    scheduled: false,
    withVars: false,
    withTpm: false,
    config,
    ...extra,
  };
}

function store() {
  const db = openDb(':memory:');
  const vms = new VmRepo(db);
  vms.insert('vm1', 'one', config, 0);
  return { db, vms, repo: new SnapshotRepo(db) };
}

describe('snapshot tree', () => {
  it('orders parents before children, oldest sibling first, with depths', () => {
    const order = treeOrder([snap('d', 'b', 4), snap('a', null, 1), snap('c', 'b', 3), snap('b', 'a', 2), snap('e', 'a', 5)]);
    expect(order.map((n) => `${n.snap.id}${n.depth}`)).toEqual(['a0', 'b1', 'c2', 'd2', 'e1']);
  });

  it('finds a snapshot by id or by name, names case-insensitively', () => {
    const all = [snap('s1', null, 1, { name: 'Before-Update' })];
    expect(findSnapshot(all, 's1')?.name).toBe('Before-Update');
    expect(findSnapshot(all, 'before-update')?.id).toBe('s1');
    expect(findSnapshot(all, 'other')).toBeUndefined();
  });

  it('deleting a middle snapshot moves its children and "you are here" to its parent', () => {
    const { repo } = store();
    for (const s of [snap('a', null, 1), snap('b', 'a', 2), snap('c', 'b', 3), snap('d', 'b', 4)]) repo.add(s);
    repo.setCurrent('vm1', 'b');
    repo.remove(repo.list('vm1').find((s) => s.id === 'b')!);
    expect(repo.list('vm1').map((s) => [s.id, s.parentId])).toEqual([
      ['a', null],
      ['c', 'a'],
      ['d', 'a'],
    ]);
    expect(repo.head('vm1').currentId).toBe('a');
    // a new snapshot's parent is where the VM is
    repo.add(snap('e', repo.head('vm1').currentId, 5));
    expect(repo.head('vm1').currentId).toBe('e');
  });

  it('names are unique per VM, ignoring case', () => {
    const { repo } = store();
    repo.add(snap('a', null, 1, { name: 'x' }));
    expect(() => repo.add(snap('b', null, 2, { name: 'X' }))).toThrow(/UNIQUE/);
  });

  it('deleting the VM deletes its snapshots and its schedule', () => {
    const { repo, vms } = store();
    repo.add(snap('a', null, 1));
    repo.setSchedule('vm1', { everySec: 3600, keep: 2 }, 10);
    vms.delete('vm1');
    expect(repo.list('vm1')).toEqual([]);
    expect(repo.schedules()).toEqual([]);
  });

  it('retention removes the oldest scheduled snapshots beyond keep, never ones taken by hand', () => {
    const all = [
      snap('m1', null, 1),
      snap('s1', 'm1', 2, { scheduled: true }),
      snap('s2', 's1', 3, { scheduled: true }),
      snap('m2', 's2', 4),
      snap('s3', 'm2', 5, { scheduled: true }),
    ];
    expect(retentionVictims(all, 2).map((s) => s.id)).toEqual(['s1']);
    expect(retentionVictims(all, 1).map((s) => s.id)).toEqual(['s1', 's2']);
    expect(retentionVictims(all, 5)).toEqual([]);
  });

  it('scheduled names are the UTC time, made unique', () => {
    const at = Date.UTC(2026, 10, 30, 6, 5, 9);
    expect(scheduledName(at, () => false)).toBe('auto-20261130-060509');
    expect(scheduledName(at, (n) => n === 'auto-20261130-060509')).toBe('auto-20261130-060509-2');
  });

  it('a revert restores the guest-visible machine and keeps the host policy', () => {
    const now: VmConfig = { ...config, memoryMiB: 2048, cpus: 4, restart: 'always', autostart: true, firmware: 'uefi' };
    const then: VmConfig = { ...config, memoryMiB: 512, cpus: 1, restart: 'never', autostart: false, firmware: 'bios' };
    const out = restoredConfig(now, then);
    expect(out).toMatchObject({ memoryMiB: 512, cpus: 1, firmware: 'bios', restart: 'always', autostart: true });
  });
});

describe('snapshot schedule (fake clock)', () => {
  function scheduler(fail: (n: number) => boolean = () => false) {
    const { repo, vms } = store();
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const log: string[] = [];
    let n = 0;
    const s = new SnapshotScheduler(repo, clock, {
      vm: (id) => vms.get(id),
      take: async (vmId: string, o: CreateOptions) => {
        n++;
        if (fail(n)) throw new Error('disk full');
        const info = snap(`s${n}`, repo.head(vmId).currentId, clock.now(), { name: o.name, scheduled: !!o.scheduled, hasRam: o.memory });
        repo.add(info);
        log.push(`take ${o.name} ram=${o.memory}`);
        return info;
      },
      prune: async (vmId, ids) => {
        for (const id of ids) repo.remove(repo.list(vmId).find((x) => x.id === id)!);
        log.push(`prune ${ids.join(',')}`);
      },
      setSchedule: (vmId, schedule, nextAt) => {
        repo.setSchedule(vmId, schedule, nextAt);
        return { snapshots: repo.list(vmId), currentId: repo.head(vmId).currentId, schedule: repo.head(vmId).schedule };
      },
      failed: (rec: VmRecord, message) => log.push(`failed ${rec.name}: ${message}`),
    });
    return { s, repo, clock, log };
  }

  it('takes a disk snapshot every period and keeps the newest N scheduled ones', async () => {
    const { s, repo, clock, log } = scheduler();
    const t0 = clock.now();
    repo.add(snap('manual', null, t0 - 1, { scheduled: false }));
    s.set('vm1', { everySec: 3600, keep: 2 });
    expect(repo.head('vm1').schedule).toEqual({ everySec: 3600, keep: 2, nextAt: t0 + 3600_000 });
    await clock.advanceTo(t0 + 3600_000 - 1);
    expect(log).toEqual([]);
    await clock.advanceTo(t0 + 4 * 3600_000);
    expect(log).toEqual([
      'take auto-20260101-010000 ram=false',
      'take auto-20260101-020000 ram=false',
      'take auto-20260101-030000 ram=false',
      'prune s1',
      'take auto-20260101-040000 ram=false',
      'prune s2',
    ]);
    expect(repo.list('vm1').map((x) => x.name)).toEqual(['manual', 'auto-20260101-030000', 'auto-20260101-040000']);
    expect(repo.head('vm1').schedule?.nextAt).toBe(t0 + 5 * 3600_000);
    s.set('vm1', null);
    await clock.advanceTo(t0 + 10 * 3600_000);
    expect(log).toHaveLength(6);
    expect(repo.head('vm1').schedule).toBeNull();
  });

  it('a failed scheduled snapshot is reported and the schedule goes on', async () => {
    const { s, clock, log } = scheduler((n) => n === 1);
    const t0 = clock.now();
    s.set('vm1', { everySec: 600, keep: 5 });
    await clock.advanceTo(t0 + 1200_000);
    expect(log).toEqual(['failed one: Scheduled snapshot "auto-20260101-001000" failed: disk full', 'take auto-20260101-002000 ram=false']);
  });

  it('a host that comes back after the due time takes one snapshot at once, then keeps the period', async () => {
    const { s, repo, clock, log } = scheduler();
    const t0 = clock.now();
    repo.setSchedule('vm1', { everySec: 3600, keep: 3 }, t0 - 5 * 3600_000);
    s.start();
    await clock.advanceTo(t0);
    expect(log).toEqual(['take auto-20260101-000000 ram=false']);
    await clock.advanceTo(t0 + 3600_000);
    expect(log).toHaveLength(2);
  });
});
