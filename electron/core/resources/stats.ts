// Live statistics of running VMs: host CPU and resident memory of each QEMU from /proc, disk
// counters from QMP, the balloon from QMP's BALLOON_CHANGE events, NIC traffic where the host
// can count it (nic-rates.ts). One sample every 2 s, the
// last hour kept in memory, per-minute averages for a day in SQLite.
import fs from 'node:fs';
import type { Nic, NicRate, VmStats } from '../api/contract.js';
import type { QemuCommands } from '../qemu/commands.js';
import { QmpError, type QmpEvent } from '../qemu/qmp.js';
import { NicCounters, totals } from './nic-rates.js';

const TICKS = 100; // USER_HZ on Linux
const PAGE = 4096;
export const SAMPLE_MS = 2000;
const HOUR_SAMPLES = 3600_000 / SAMPLE_MS;

export interface Sampled {
  vmId: string;
  pid: number;
  qmp: QemuCommands;
  /** The run's QMP events (one subscription per run: the balloon size arrives as events). */
  onEvent(fn: (ev: QmpEvent) => void): void;
  /** The NICs QEMU runs with (per-NIC traffic). */
  nics?: readonly Nic[];
}

/**
 * The guest's balloon size of one run. Asked once, then kept current by BALLOON_CHANGE, which
 * QEMU sends whenever the guest moves its balloon: polling it each tick would double the QMP
 * round trips of sampling for a figure that rarely changes.
 */
class BalloonWatch {
  bytes: number | null = null;
  private asked = false;

  constructor(vm: Sampled) {
    vm.onEvent((ev) => {
      if (ev.event === 'BALLOON_CHANGE' && typeof ev.data?.actual === 'number') {
        this.bytes = ev.data.actual;
        this.asked = true;
      }
    });
  }

  /** The size, asking QEMU until it has answered once (a guest without a balloon stays null). */
  async current(qmp: QemuCommands): Promise<number | null> {
    if (!this.asked) {
      try {
        const actual = await qmp.queryBalloon(1000);
        if (!this.asked) this.bytes = actual;
        this.asked = true;
      } catch (err) {
        // no balloon device: nothing to ask again; QMP busy: ask at the next tick
        if (err instanceof QmpError) this.asked = true;
      }
    }
    return this.bytes;
  }
}

interface Prev {
  pid: number;
  at: number;
  cpuTicks: number;
  rd: number;
  wr: number;
}

/**
 * Each QEMU's /proc stat, kept open: a stat file reads afresh at offset 0, and sampling 20 VMs
 * every 2 s spent as much on opening and closing them as on reading.
 */
class ProcStats {
  private readonly open = new Map<string, { pid: number; fd: number }>();
  private readonly buf = Buffer.alloc(4096);

  /** CPU time (utime + stime, in ticks) and resident memory of a VM's QEMU, or null if it is gone. */
  read(vmId: string, pid: number): { cpuTicks: number; rssBytes: number } | null {
    let f = this.open.get(vmId);
    if (f && f.pid !== pid) this.close(vmId);
    try {
      if (!f || f.pid !== pid) this.open.set(vmId, (f = { pid, fd: fs.openSync(`/proc/${pid}/stat`, 'r') }));
      const stat = this.buf.toString('latin1', 0, fs.readSync(f.fd, this.buf, 0, this.buf.length, 0));
      // the fields after the command name (which may hold spaces): state [0], utime [11], stime [12], rss [21]
      const x = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return { cpuTicks: Number(x[11]) + Number(x[12]), rssBytes: Number(x[21]) * PAGE };
    } catch {
      this.close(vmId);
      return null;
    }
  }

  /** Closes the files of VMs no longer running. */
  keepOnly(vmIds: Set<string>): void {
    for (const id of this.open.keys()) if (!vmIds.has(id)) this.close(id);
  }

  close(vmId: string): void {
    const f = this.open.get(vmId);
    this.open.delete(vmId);
    if (f) fs.closeSync(f.fd);
  }
}

export class StatsBook {
  private readonly prev = new Map<string, Prev>();
  private readonly hour = new Map<string, VmStats[]>();
  /** Per run (a restart brings a new QMP link, and a new watch with it). */
  private readonly balloons = new WeakMap<QemuCommands, BalloonWatch>();
  private readonly procs = new ProcStats();
  private readonly nics = new Map<string, NicCounters>();

  /** One sample of a VM; rates need a previous sample, so the first one reads 0. */
  async sample(vm: Sampled, now: number): Promise<VmStats | null> {
    const proc = this.procs.read(vm.vmId, vm.pid);
    if (proc === null) return null;
    const ticks = proc.cpuTicks;
    let rd = 0;
    let wr = 0;
    let watch = this.balloons.get(vm.qmp);
    if (!watch) this.balloons.set(vm.qmp, (watch = new BalloonWatch(vm)));
    const balloon = watch.current(vm.qmp);
    try {
      for (const blk of await vm.qmp.queryBlockstats(1000)) {
        rd += blk.stats.rd_bytes;
        wr += blk.stats.wr_bytes;
      }
    } catch {
      // QMP busy or gone: CPU and memory still count
    }
    const before = this.prev.get(vm.vmId);
    const p = before?.pid === vm.pid ? before : undefined; // a new run starts its own counters
    this.prev.set(vm.vmId, { pid: vm.pid, at: now, cpuTicks: ticks, rd, wr });
    const secs = p ? (now - p.at) / 1000 : 0;
    let counters = this.nics.get(vm.vmId);
    if (counters?.pid !== vm.pid) this.nics.set(vm.vmId, (counters = new NicCounters(vm.pid)));
    const nics = counters.rates(vm.nics ?? [], now);
    const net = totals(nics);
    const rate = (a: number, b: number) => (secs > 0 ? Math.max(0, (a - b) / secs) : 0);
    const s: VmStats = {
      vmId: vm.vmId,
      at: now,
      cpuPercent: p && secs > 0 ? ((ticks - p.cpuTicks) / TICKS / secs) * 100 : 0,
      rssBytes: proc.rssBytes,
      balloonBytes: await balloon,
      diskReadBps: p ? rate(rd, p.rd) : 0,
      diskWriteBps: p ? rate(wr, p.wr) : 0,
      netRxBps: net.rx,
      netTxBps: net.tx,
      nics,
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

  /** Lets go of what the VMs that stopped running held (their history stays). */
  keepOnly(running: Sampled[]): void {
    const ids = new Set(running.map((r) => r.vmId));
    this.procs.keepOnly(ids);
    for (const id of this.prev.keys()) if (!ids.has(id)) this.prev.delete(id);
    for (const id of this.nics.keys()) if (!ids.has(id)) this.nics.delete(id);
  }

  /** Closes every file it holds (the host is closing). */
  close(): void {
    this.procs.keepOnly(new Set());
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
        netRxBps: xs.some((s) => s.netRxBps !== null) ? avg((s) => s.netRxBps ?? 0) : null,
        netTxBps: xs.some((s) => s.netTxBps !== null) ? avg((s) => s.netTxBps ?? 0) : null,
        nics: nicAverages(xs),
      });
    }
    return out;
  }
}

/**
 * Each NIC's average over a minute's samples: over the samples that measured it (a tap found
 * late still counts), null with the last note when none did. NICs in the order last seen.
 */
export function nicAverages(xs: readonly VmStats[]): NicRate[] {
  const ids: string[] = [];
  for (const s of xs) for (const n of s.nics ?? []) if (!ids.includes(n.nic)) ids.push(n.nic);
  return ids.map((nic): NicRate => {
    const seen = xs.flatMap((s) => s.nics?.filter((n) => n.nic === nic) ?? []);
    const measured = seen.filter((n) => n.rxBps !== null && n.txBps !== null);
    const mean = (f: (n: NicRate) => number) => measured.reduce((a, n) => a + f(n), 0) / measured.length;
    return measured.length
      ? { nic, rxBps: mean((n) => n.rxBps!), txBps: mean((n) => n.txBps!), note: null }
      : { nic, rxBps: null, txBps: null, note: seen.at(-1)?.note ?? null };
  });
}
