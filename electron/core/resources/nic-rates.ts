// Per-NIC traffic of a running VM, where the host can count it. A bridge NIC is a tap that
// qemu-bridge-helper made and named (tapN, chosen by the kernel): it is found among QEMU's open
// files (a tun fd's /proc/PID/fdinfo says "iff: tapN"), in the order QEMU opened them, which is
// the order of the bridge NICs on its command line; its byte counters are in sysfs. passt, slirp
// and private (socket) NICs move packets inside QEMU or passt with no per-NIC counter the host
// can read, and QEMU 7.2's QMP has none either (query-stats covers KVM only).
import fs from 'node:fs';
import path from 'node:path';
import type { Nic, NicRate } from '../api/contract.js';

export const UNMEASURED: Record<Exclude<Nic['kind'], 'bridge'>, string> = {
  passt: 'cannot be measured from the host: passt keeps no per-NIC counters the host can read',
  user: "cannot be measured from the host: QEMU's slirp keeps no counters the host can read",
  private: 'cannot be measured from the host: a private network is a socket inside QEMU with no counters',
};

/** The taps QEMU holds open, in the order it opened them (fd number). */
export function qemuTaps(pid: number, procRoot = '/proc'): string[] {
  const dir = path.join(procRoot, String(pid), 'fdinfo');
  let fds: string[];
  try {
    fds = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const taps: string[] = [];
  for (const fd of fds.map(Number).sort((a, b) => a - b)) {
    try {
      const m = /^iff:\s*(\S+)$/m.exec(fs.readFileSync(path.join(dir, String(fd)), 'utf8'));
      if (m) taps.push(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return taps;
}

/** A tap's byte counters as the guest sees them: what the tap sends is what the guest receives. */
export function tapBytes(tap: string, sysRoot = '/sys/class/net'): { rx: number; tx: number } | null {
  const read = (f: string) => Number(fs.readFileSync(path.join(sysRoot, tap, 'statistics', f), 'utf8').trim());
  try {
    return { rx: read('tx_bytes'), tx: read('rx_bytes') };
  } catch {
    return null;
  }
}

interface Counted {
  at: number;
  bytes: Map<string, { rx: number; tx: number }>;
}

/** One VM run's NIC counters between samples. */
export class NicCounters {
  private taps: string[] | null = null;
  private prev: Counted | null = null;

  constructor(
    readonly pid: number,
    private readonly o: { procRoot?: string; sysRoot?: string } = {},
  ) {}

  /** Rates since the previous sample (the first one reads 0 for what is measured). */
  rates(nics: readonly Nic[], now: number): NicRate[] {
    const bridges = nics.filter((n) => n.kind === 'bridge');
    // QEMU opens the taps while it starts: look again until every bridge NIC has one
    if (bridges.length && (this.taps?.length ?? 0) < bridges.length) this.taps = qemuTaps(this.pid, this.o.procRoot);
    const bytes = new Map<string, { rx: number; tx: number }>();
    bridges.forEach((n, i) => {
      const tap = this.taps?.[i];
      const b = tap ? tapBytes(tap, this.o.sysRoot) : null;
      if (b) bytes.set(n.id, b);
    });
    const prev = this.prev;
    this.prev = { at: now, bytes };
    const secs = prev ? (now - prev.at) / 1000 : 0;
    return nics.map((n): NicRate => {
      if (n.kind !== 'bridge') return { nic: n.id, rxBps: null, txBps: null, note: UNMEASURED[n.kind] };
      const b = bytes.get(n.id);
      if (!b) return { nic: n.id, rxBps: null, txBps: null, note: "its tap was not found among QEMU's open files" };
      const p = prev?.bytes.get(n.id);
      const rate = (a: number, was: number | undefined) => (was !== undefined && secs > 0 ? Math.max(0, (a - was) / secs) : 0);
      return { nic: n.id, rxBps: rate(b.rx, p?.rx), txBps: rate(b.tx, p?.tx), note: null };
    });
  }
}

/** The VM's totals over the NICs the host can measure; null when it measures none. */
export function totals(rates: readonly NicRate[]): { rx: number | null; tx: number | null } {
  const measured = rates.filter((r) => r.rxBps !== null && r.txBps !== null);
  if (!measured.length) return { rx: null, tx: null };
  return { rx: measured.reduce((a, r) => a + r.rxBps!, 0), tx: measured.reduce((a, r) => a + r.txBps!, 0) };
}
