// HA settings: only a VM whose every disk and boot file lies on a shared pool may be HA, the
// error names the field and the file; the fencer's decision never moves a deadline back and
// never kills a process whose start time changed; the balancer's imbalance figure.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS, VmConfig } from '../../electron/core/api/contract';
import { checkHaStorage, sharedPoolsNeeded } from '../../electron/core/vms/ha-storage';
import { Pools } from '../../electron/core/vms/pools';
import { openDb } from '../../electron/core/store/db';
import { PoolRepo } from '../../electron/core/store/pool-repo';
import { tempDir } from '../helpers';
import { Fencer } from '../../electron/core/ha/fencer/fencer';
import { parseMessage, type FenceRecord } from '../../electron/core/ha/fencer/protocol';
import { imbalance } from '../../electron/core/ha/decisions/balance';
import { FakeClock } from '../support/fake-clock';

const pools = { poolOf: (f: string) => (f.startsWith('/shared/') ? 'nfs' : f.startsWith('/images/') ? 'images' : null) };
const shared = (p: string) => p === 'nfs';
const config = (ha: boolean, disks: string[], kernel: string | null = null) => ({
  ...CONFIG_DEFAULTS,
  ha: { ...CONFIG_DEFAULTS.ha, enabled: ha },
  kernel,
  disks: disks.map((path) => ({ path, format: 'qcow2' as const, owned: true })),
});

describe('HA storage', () => {
  it('accepts an HA VM whose files are all on shared pools, and any non-HA VM', () => {
    expect(() => checkHaStorage(config(true, ['/shared/a.qcow2'], '/shared/vmlinuz'), pools, shared)).not.toThrow();
    expect(() => checkHaStorage(config(false, ['/images/a.qcow2']), pools, shared)).not.toThrow();
  });

  it('refuses HA with a disk or a boot file on a local pool, naming the file and the pool', () => {
    expect(() => checkHaStorage(config(true, ['/shared/a.qcow2', '/images/b.qcow2']), pools, shared)).toThrow(
      /"ha.enabled": \/images\/b.qcow2 is in pool "images", which other hosts cannot reach/,
    );
    expect(() => checkHaStorage(config(true, [], '/images/vmlinuz'), pools, shared)).toThrow(/\/images\/vmlinuz is in pool "images"/);
  });

  it('takes a pool added --shared as shared, kept in the database across a reopen; a plain pool is not', () => {
    const root = tempDir();
    const file = path.join(root, 'corral.db');
    const nfs = fs.mkdtempSync(path.join(tempDir(), 'nfs-'));
    const local = fs.mkdtempSync(path.join(tempDir(), 'local-'));
    const layout = { root: path.join(root, 'data'), images: path.join(root, 'data', 'images'), vmsDir: path.join(root, 'data', 'vms') };
    fs.mkdirSync(layout.root);
    let db = openDb(file);
    const made = new Pools(new PoolRepo(db), layout);
    expect(made.add('nfs', nfs, true).shared).toBe(true);
    expect(made.add('local', local).shared).toBe(false);
    db.close();
    db = openDb(file);
    const p = new Pools(new PoolRepo(db), layout);
    expect(p.isShared('nfs')).toBe(true);
    expect(p.isShared('local')).toBe(false);
    expect(p.isShared('default')).toBe(false);
    expect(p.shared()).toEqual({ nfs: fs.realpathSync(nfs) });
    const disk = path.join(fs.realpathSync(nfs), 'a.qcow2');
    expect(() => checkHaStorage(config(true, [disk]), p, (n) => p.isShared(n))).not.toThrow();
    expect(() => checkHaStorage(config(true, [disk], path.join(fs.realpathSync(local), 'vmlinuz')), p, (n) => p.isShared(n))).toThrow(
      /pool "local", which other hosts cannot reach/,
    );
    // what a host must offer to run it: the shared pool by name and path
    expect(sharedPoolsNeeded(config(true, [disk]), p)).toEqual({ nfs: fs.realpathSync(nfs) });
    db.close();
  });

  it('keeps HA settings in the VM config with defaults, and checks them', () => {
    expect(VmConfig.parse({ ...config(false, []) }).ha).toEqual({ enabled: false, priority: 0, group: null, hosts: [] });
    const bad = VmConfig.safeParse({ ...config(false, []), ha: { enabled: true, priority: 5000, group: 'a b', hosts: [] } });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['ha.group', 'ha.priority']);
  });
});

describe('the fencer', () => {
  function fencer(startTimes: Record<number, string>) {
    const clock = new FakeClock(1_000_000);
    const killed: number[] = [];
    const records: FenceRecord[] = [];
    const f = new Fencer({
      nowMs: () => clock.now(),
      after: (ms, fn) => clock.after(ms, fn),
      startTime: (pid) => startTimes[pid] ?? null,
      kill: (pid) => void killed.push(pid),
      record: (r) => void records.push(r),
      previous: () => records.at(-1) ?? null,
      clearRecord: () => records.splice(0),
      log: () => undefined,
    });
    return { clock, f, killed, records };
  }

  it('kills at the latest deadline, only processes whose start time still matches', async () => {
    const { clock, f, killed, records } = fencer({ 10: '500', 11: '999' });
    const guards = [
      { vm: 'a', pid: 10, startTime: '500' },
      { vm: 'b', pid: 11, startTime: '600' }, // pid 11 now belongs to another process
    ];
    f.handle({ op: 'arm', deadlineMs: 1_005_000, guards });
    f.handle({ op: 'arm', deadlineMs: 1_008_000, guards });
    f.handle({ op: 'arm', deadlineMs: 1_006_000, guards }); // late, older: never moves the deadline back
    await clock.advanceTo(1_007_999);
    expect(killed).toEqual([]);
    await clock.advanceTo(1_008_000);
    expect(killed).toEqual([10]);
    expect(records[0]!.gone.map((g) => g.vm)).toEqual(['b']);
    expect(f.armed).toBe(false);
  });

  it('never fences again for a late arm with the deadline it already fenced at; a later one arms it', async () => {
    const { clock, f, killed, records } = fencer({ 10: '500', 12: '700' });
    f.handle({ op: 'arm', deadlineMs: 1_002_000, guards: [{ vm: 'a', pid: 10, startTime: '500' }] });
    await clock.advanceTo(1_002_000);
    expect(records).toHaveLength(1);
    // the host, not yet aware, re-sends its last deadline with a guest it started since: no new
    // fence and no new deadline, but that guest may be started elsewhere too, so it goes at once
    f.handle({ op: 'arm', deadlineMs: 1_002_000, guards: [{ vm: 'c', pid: 12, startTime: '700' }] });
    await clock.advanceTo(1_004_000);
    expect(killed).toEqual([10, 12]);
    expect(records.at(-1)!.killed.map((g) => g.vm)).toEqual(['a', 'c']);
    expect(f.armed).toBe(false);
    f.handle({ op: 'arm', deadlineMs: 1_009_000, guards: [{ vm: 'c', pid: 12, startTime: '700' }] });
    expect(f.armed).toBe(true);
  });

  it('keeps what an unread fence killed when it fences again, each kill with its own time', async () => {
    const { clock, f, records } = fencer({ 10: '500', 12: '700' });
    f.handle({ op: 'arm', deadlineMs: 1_002_000, guards: [{ vm: 'a', pid: 10, startTime: '500' }] });
    await clock.advanceTo(1_002_000);
    const first = records[0]!;
    // a lease taken while cut off, its deadline already past: a fence of nothing adds nothing
    f.handle({ op: 'arm', deadlineMs: 1_003_000, guards: [] });
    await clock.advanceTo(1_003_000);
    expect(records.at(-1)).toEqual(first);
    f.handle({ op: 'arm', deadlineMs: 1_004_000, guards: [{ vm: 'c', pid: 12, startTime: '700' }] });
    await clock.advanceTo(1_004_000);
    const merged = records.at(-1)!;
    expect(merged.at).toBe(first.at);
    expect(merged.killed.map((g) => [g.vm, g.at === undefined])).toEqual([
      ['a', true],
      ['c', false],
    ]);
  });

  it('does nothing once disarmed', async () => {
    const { clock, f, killed, records } = fencer({ 10: '500' });
    f.handle({ op: 'arm', deadlineMs: 1_001_000, guards: [{ vm: 'a', pid: 10, startTime: '500' }] });
    f.handle({ op: 'disarm' });
    await clock.advanceTo(1_010_000);
    expect(killed).toEqual([]);
    expect(records).toEqual([]);
  });

  it('ignores malformed messages', () => {
    expect(parseMessage('{"op":"arm","deadlineMs":5,"guards":[{"vm":"a","pid":1,"startTime":"5"}]}')).toBeNull(); // pid 1
    expect(parseMessage('{"op":"arm","deadlineMs":"soon","guards":[]}')).toBeNull();
    expect(parseMessage('not json')).toBeNull();
    expect(parseMessage('{"op":"disarm"}')).toEqual({ op: 'disarm' });
  });
});

describe('imbalance', () => {
  it('is 0 when even and 1 when one host carries everything', () => {
    expect(imbalance([0.5, 0.5, 0.5])).toBe(0);
    expect(imbalance([0.9, 0, 0])).toBeCloseTo(1, 6);
  });
});
