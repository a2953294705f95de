// Per-NIC traffic: a bridge NIC's tap found among QEMU's open files (by fdinfo's "iff:"), its
// sysfs counters turned into rates as the guest sees them; other kinds say why they have none.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Nic } from '../../electron/core/api/contract';
import { NicCounters, qemuTaps, totals, UNMEASURED } from '../../electron/core/resources/nic-rates';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-nic-rates-'));
const proc = path.join(root, 'proc');
const sys = path.join(root, 'sys');
const fdinfo = path.join(proc, '42', 'fdinfo');
fs.mkdirSync(fdinfo, { recursive: true });
// QEMU's fds: a file, the second bridge's tap opened after the first (fd 10 after fd 9)
fs.writeFileSync(path.join(fdinfo, '3'), 'pos:\t0\nflags:\t02\nmnt_id:\t20\nino:\t7\n');
fs.writeFileSync(path.join(fdinfo, '10'), 'pos:\t0\nflags:\t02004002\nmnt_id:\t24\nino:\t99\niff:\ttap7\n');
fs.writeFileSync(path.join(fdinfo, '9'), 'pos:\t0\nflags:\t02004002\nmnt_id:\t24\nino:\t98\niff:\ttap3\n');
function counters(tap: string, rx: number, tx: number): void {
  const dir = path.join(sys, tap, 'statistics');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'rx_bytes'), `${rx}\n`);
  fs.writeFileSync(path.join(dir, 'tx_bytes'), `${tx}\n`);
}
const nic = (id: string, kind: Nic['kind']): Nic => ({ id, kind, mac: '52:54:00:00:00:01', bridge: null, network: null, forwards: [] });

describe('NIC traffic', () => {
  it("finds QEMU's taps in the order it opened them", () => {
    expect(qemuTaps(42, proc)).toEqual(['tap3', 'tap7']);
    expect(qemuTaps(43, proc)).toEqual([]);
  });

  it("gives bridge NICs rates from their tap's counters, as the guest sees them", () => {
    const nics = [nic('net0', 'passt'), nic('net1', 'bridge'), nic('net2', 'bridge'), nic('net3', 'private')];
    const c = new NicCounters(42, { procRoot: proc, sysRoot: sys });
    counters('tap3', 1000, 5000);
    counters('tap7', 0, 0);
    const first = c.rates(nics, 10_000);
    expect(first).toEqual([
      { nic: 'net0', rxBps: null, txBps: null, note: UNMEASURED.passt },
      { nic: 'net1', rxBps: 0, txBps: 0, note: null },
      { nic: 'net2', rxBps: 0, txBps: 0, note: null },
      { nic: 'net3', rxBps: null, txBps: null, note: UNMEASURED.private },
    ]);
    // 2 s later: the tap sent 4000 bytes to the guest and received 1000 from it
    counters('tap3', 2000, 9000);
    counters('tap7', 600, 200);
    const next = c.rates(nics, 12_000);
    expect(next[1]).toEqual({ nic: 'net1', rxBps: 2000, txBps: 500, note: null });
    expect(next[2]).toEqual({ nic: 'net2', rxBps: 100, txBps: 300, note: null });
    expect(totals(next)).toEqual({ rx: 2100, tx: 800 });
  });

  it('says plainly when nothing can be measured', () => {
    const rates = new NicCounters(42, { procRoot: proc, sysRoot: sys }).rates([nic('net0', 'user')], 0);
    expect(rates).toEqual([{ nic: 'net0', rxBps: null, txBps: null, note: expect.stringMatching(/cannot be measured from the host/) }]);
    expect(totals(rates)).toEqual({ rx: null, tx: null });
    const lost = new NicCounters(41, { procRoot: proc, sysRoot: sys }).rates([nic('net0', 'bridge')], 0);
    expect(lost[0]).toMatchObject({ rxBps: null, note: expect.stringMatching(/tap was not found/) });
  });
});
