// A VM's history moves with it: the source's journal and statistics, read from one real SQLite
// file and written into another as the target does. The target's VM shows the events (naming
// the host they happened on, oldest first, before its own), the host-wide log leaves them out,
// and an arrival that fails takes them away again.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MovedHistory } from '../../electron/core/api/contract';
import { CONFIG_DEFAULTS } from '../../electron/core/api/schemas';
import { openDb } from '../../electron/core/store/db';
import { EventRepo } from '../../electron/core/store/event-repo';
import { StatsRepo } from '../../electron/core/store/stats-repo';
import { VmRepo } from '../../electron/core/store/vm-repo';
import { adoptHistory, forgetAdopted, historyOf } from '../../electron/core/vms/migration/history';
import { tempDir } from '../helpers';

const DAY = 24 * 3600_000;

function store(name: string) {
  const db = openDb(path.join(tempDir(), `${name}.db`));
  return { db, vms: new VmRepo(db), events: new EventRepo(db), stats: new StatsRepo(db) };
}

const config = { ...CONFIG_DEFAULTS, disks: [] };

function event(vmId: string, at: number, message: string, extra: Partial<Parameters<EventRepo['add']>[0]> = {}) {
  return { vmId, vmName: 'web', at, kind: 'host' as const, from: null, to: null, reason: null, message, ...extra };
}

function statsRow(vmId: string, at: number) {
  return {
    vmId,
    at,
    cpuPercent: 12,
    rssBytes: 64 << 20,
    balloonBytes: null,
    diskReadBps: 1,
    diskWriteBps: 2,
    netRxBps: null,
    netTxBps: null,
  };
}

describe('a moved VM keeps its history', () => {
  it('carries when it was made, its restarts, last exit, uptime, journal and statistics', () => {
    const now = Date.now();
    const a = store('a');
    const made = now - 3 * DAY;
    a.vms.insert('0123456789ab', 'web', config, made);
    const lastExit = { code: 1, signal: null, reason: 'qemu-exited' as const, at: now - 2 * DAY };
    a.vms.setRuntime('0123456789ab', { restarts: 4, lastExit, startedAt: now - 3600_000 }, now);
    a.events.add(event('0123456789ab', made, 'Created'));
    a.events.add(
      event('0123456789ab', now - 2 * DAY, 'QEMU crashed', {
        kind: 'state',
        from: 'running',
        to: 'crashed',
        reason: 'crashed',
        report: { code: 1, signal: null, reason: 'qemu-exited', qmpEvents: [], serialTail: 'oops', qemuLog: '' },
      }),
    );
    a.events.add(event('0123456789ab', now - 1000, 'Moving to b (live, shared storage)'));
    a.events.add(event('ffffffffffff', now - 500, 'another VM'));
    a.stats.add([statsRow('0123456789ab', now - 120_000), statsRow('0123456789ab', now - 60_000), statsRow('ffffffffffff', now)], now);

    const h = historyOf(a, a.vms.get('0123456789ab')!, 'host-a', now);
    // what goes over the wire is what the target's schema accepts
    expect(MovedHistory.parse(JSON.parse(JSON.stringify(h)))).toEqual(h);
    expect(h).toMatchObject({ createdAt: made, startedAt: now - 3600_000, restarts: 4, lastExit });
    expect(h.events.map((e) => [e.message, e.host])).toEqual([
      ['Created', 'host-a'],
      ['QEMU crashed', 'host-a'],
      ['Moving to b (live, shared storage)', 'host-a'],
    ]);
    expect(h.events[1]!.report?.serialTail).toBe('oops');
    expect(h.stats.map((s) => s.at)).toEqual([now - 120_000, now - 60_000]);

    const b = store('b');
    b.events.add(event('eeeeeeeeeeee', now - 10, 'something of host b'));
    const rec = b.vms.insert('0123456789ab', 'web', config, now, h.createdAt);
    const adopted = adoptHistory(b, rec, h, now);
    b.events.add(event('0123456789ab', now, 'Arriving from another host'));
    expect(b.vms.get('0123456789ab')!.createdAt).toBe(made);
    const mine = b.events.list(50, '0123456789ab');
    expect(mine.map((e) => [e.message, e.host ?? null])).toEqual([
      ['Arriving from another host', null],
      ['Moving to b (live, shared storage)', 'host-a'],
      ['QEMU crashed', 'host-a'],
      ['Created', 'host-a'],
    ]);
    expect(mine[2]).toMatchObject({ kind: 'state', from: 'running', to: 'crashed', at: now - 2 * DAY });
    expect(mine[2]!.report?.serialTail).toBe('oops');
    // the host's own log: only what happened here
    expect(b.events.list(50).map((e) => e.message)).toEqual(['Arriving from another host', 'something of host b']);
    expect(b.stats.day('0123456789ab', now).map((s) => s.at)).toEqual([now - 120_000, now - 60_000]);

    // moved on again: the events keep the host they happened on
    const again = historyOf(b, b.vms.get('0123456789ab')!, 'host-b', now);
    expect(again.events.map((e) => e.host)).toEqual(['host-a', 'host-a', 'host-a', 'host-b']);
    // …back to A, which still has its own: only B's are new there, nothing twice, all in time order
    b.events.add(event('0123456789ab', now + 10, 'Moving to a'));
    a.events.add(event('0123456789ab', now + 5, 'Moved to b'));
    const again2 = historyOf(b, b.vms.get('0123456789ab')!, 'host-b', now + 20);
    expect(again2.events.map((e) => e.message).slice(-2)).toEqual(['Arriving from another host', 'Moving to a']);
    a.vms.delete('0123456789ab');
    const back = a.vms.insert('0123456789ab', 'web', config, now, again.createdAt);
    adoptHistory(a, back, again2, now);
    expect(
      a.events
        .list(50, '0123456789ab')
        .reverse()
        .map((e) => [e.message, e.host ?? null]),
    ).toEqual([
      ['Created', null],
      ['QEMU crashed', null],
      ['Moving to b (live, shared storage)', null],
      ['Arriving from another host', 'host-b'],
      ['Moved to b', null],
      ['Moving to a', 'host-b'],
    ]);
    expect(a.stats.day('0123456789ab', now).map((s) => s.at)).toEqual([now - 120_000, now - 60_000]);

    // the arrival failed: what came with it goes, the host's own events stay
    forgetAdopted(b, '0123456789ab', adopted);
    expect(b.events.list(50, '0123456789ab').map((e) => e.message)).toEqual(['Moving to a', 'Arriving from another host']);
    expect(b.stats.day('0123456789ab', now)).toEqual([]);
    a.db.close();
    b.db.close();
  });

  it('drops crash reports, oldest first, then the oldest events, to fit in one call', () => {
    const now = Date.now();
    const a = store('big');
    a.vms.insert('0123456789ab', 'web', config, now);
    const big = 'x'.repeat(300_000);
    for (let i = 0; i < 6; i++)
      a.events.add(
        event('0123456789ab', now - 6000 + i * 1000, `crash ${i}`, {
          report: { code: 1, signal: null, reason: 'qemu-exited', qmpEvents: [], serialTail: big, qemuLog: '' },
        }),
      );
    const h = historyOf(a, a.vms.get('0123456789ab')!, 'host-a', now);
    expect(h.events.map((e) => e.message)).toEqual(['crash 0', 'crash 1', 'crash 2', 'crash 3', 'crash 4', 'crash 5']);
    expect(h.events.map((e) => e.report !== null)).toEqual([false, false, false, true, true, true]);
    expect(JSON.stringify(h).length).toBeLessThan(1.1 * (1 << 20));
    a.db.close();
  });
});
