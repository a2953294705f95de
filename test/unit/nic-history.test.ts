// Per-NIC traffic in the day history: a minute's samples averaged per NIC (a NIC the host cannot
// measure keeps its reason), written to a real SQLite file and read back after a reopen.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { VmStats } from '../../electron/core/api/contract';
import { nicAverages } from '../../electron/core/resources/stats';
import { openDb } from '../../electron/core/store/db';
import { StatsRepo } from '../../electron/core/store/stats-repo';
import { tempDir } from '../helpers';

const PASST_NOTE = 'cannot be measured from the host: passt keeps no per-NIC counters the host can read';

function sample(at: number, bridge: { rx: number; tx: number } | null): VmStats {
  return {
    vmId: 'vm1',
    at,
    cpuPercent: 5,
    rssBytes: 1 << 20,
    balloonBytes: null,
    diskReadBps: 0,
    diskWriteBps: 0,
    netRxBps: bridge?.rx ?? null,
    netTxBps: bridge?.tx ?? null,
    nics: [
      { nic: 'net0', rxBps: null, txBps: null, note: PASST_NOTE },
      bridge
        ? { nic: 'net1', rxBps: bridge.rx, txBps: bridge.tx, note: null }
        : { nic: 'net1', rxBps: null, txBps: null, note: "its tap was not found among QEMU's open files" },
    ],
  };
}

describe('per-NIC figures in the day history', () => {
  it('averages each NIC over the samples that measured it and says why for one never measured', () => {
    const avg = nicAverages([sample(0, null), sample(2000, { rx: 1000, tx: 100 }), sample(4000, { rx: 3000, tx: 300 })]);
    expect(avg).toEqual([
      { nic: 'net0', rxBps: null, txBps: null, note: PASST_NOTE },
      { nic: 'net1', rxBps: 2000, txBps: 200, note: null },
    ]);
    expect(nicAverages([sample(0, null)])[1]).toMatchObject({ rxBps: null, note: expect.stringMatching(/tap was not found/) });
  });

  it('keeps the totals and each NIC in SQLite across a reopen, as the stats schema reads them', () => {
    const file = path.join(tempDir(), 'corral.db');
    const now = Date.now();
    let db = openDb(file);
    const minute = { ...sample(now - 60_000, { rx: 2000, tx: 200 }), nics: nicAverages([sample(0, { rx: 2000, tx: 200 })]) };
    new StatsRepo(db).add([minute], now);
    db.close();
    db = openDb(file);
    const day = new StatsRepo(db).day('vm1', now);
    db.close();
    expect(day).toHaveLength(1);
    expect(VmStats.parse(day[0])).toEqual(day[0]);
    expect(day[0]).toMatchObject({ netRxBps: 2000, netTxBps: 200 });
    expect(day[0]!.nics).toEqual([
      { nic: 'net0', rxBps: null, txBps: null, note: PASST_NOTE },
      { nic: 'net1', rxBps: 2000, txBps: 200, note: null },
    ]);
  });
});
