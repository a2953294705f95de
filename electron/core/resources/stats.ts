// Live statistics of running VMs: host CPU and resident memory of each QEMU from /proc, the
// balloon and disk counters from QMP. One sample every 2 s, the last hour kept in memory,
// per-minute averages for a day in SQLite.
import fs from 'node:fs';
import type { VmStats } from '../api/contract.js';
import type { QemuCommands } from '../qemu/commands.js';

const TICKS = 100; // USER_HZ on Linux
const PAGE = 4096;
export const SAMPLE_MS = 2000;
const HOUR_SAMPLES = 3600_000 / SAMPLE_MS;

export interface Sampled {
  vmId: string;
  pid: number;
  qmp: QemuCommands;
}

interface Prev {
  at: number;
  cpuTicks: number;
  rd: number;
  wr: number;
}

function procCpuTicks(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime
  } catch {
    return null;
  }
}

function procRss(pid: number): number {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE;
  } catch {
    return 0;
  }
}

export class StatsBook {
  private readonly prev = new Map<string, Prev>();
  private readonly hour = new Map<string, VmStats[]>();

  /** One sample of a VM; rates need a previous sample, so the first one reads 0. */
  async sample(vm: Sampled, now: number): Promise<VmStats | null> {
    const ticks = procCpuTicks(vm.pid);
    if (ticks === null) return null;
    let rd = 0;
    let wr = 0;
    let balloon: number | null = null;
    try {
      const [blocks, b] = await Promise.all([vm.qmp.queryBlockstats(1000), vm.qmp.queryBalloon(1000).catch(() => null)]);
      for (const blk of blocks) {
        rd += blk.stats.rd_bytes;
        wr += blk.stats.wr_bytes;
      }
      balloon = b;
    } catch {
      // QMP busy or gone: CPU and memory still count
    }
    const p = this.prev.get(vm.vmId);
    this.prev.set(vm.vmId, { at: now, cpuTicks: ticks, rd, wr });
    const secs = p ? (now - p.at) / 1000 : 0;
    const rate = (a: number, b: number) => (secs > 0 ? Math.max(0, (a - b) / secs) : 0);
    const s: VmStats = {
      vmId: vm.vmId,
      at: now,
      cpuPercent: p && secs > 0 ? ((ticks - p.cpuTicks) / TICKS / secs) * 100 : 0,
      rssBytes: procRss(vm.pid),
      balloonBytes: balloon,
      diskReadBps: p ? rate(rd, p.rd) : 0,
      diskWriteBps: p ? rate(wr, p.wr) : 0,
      netRxBps: null,
      netTxBps: null,
    };
    const ring = this.hour.get(vm.vmId) ?? [];
    ring.push(s);
    if (ring.length > HOUR_SAMPLES) ring.splice(0, ring.length - HOUR_SAMPLES);
    this.hour.set(vm.vmId, ring);
    return s;
  }

  lastHour(vmId: string): VmStats[] {
    return [...(this.hour.get(vmId) ?? [])];
  }

  forget(vmId: string): void {
    this.prev.delete(vmId);
  }

  /** Averages of the samples taken in [from, to): one row per VM for the day history. */
  minuteAverages(from: number, to: number): VmStats[] {
    const out: VmStats[] = [];
    for (const [vmId, ring] of this.hour) {
      const xs = ring.filter((s) => s.at >= from && s.at < to);
      if (!xs.length) continue;
      const avg = (f: (s: VmStats) => number) => xs.reduce((a, s) => a + f(s), 0) / xs.length;
      const last = xs[xs.length - 1]!;
      out.push({
        vmId,
        at: from,
        cpuPercent: avg((s) => s.cpuPercent),
        rssBytes: Math.round(avg((s) => s.rssBytes)),
        balloonBytes: last.balloonBytes,
        diskReadBps: avg((s) => s.diskReadBps),
        diskWriteBps: avg((s) => s.diskWriteBps),
        netRxBps: null,
        netTxBps: null,
      });
    }
    return out;
  }
}
