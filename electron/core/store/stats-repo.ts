// A day of per-minute VM statistics.
import { NicRate, type VmStats } from '../api/contract.js';
import type { Db } from './db.js';

const DAY_MS = 24 * 3600_000;

export class StatsRepo {
  private readonly q;

  constructor(db: Db) {
    this.q = {
      insert: db.prepare(
        'INSERT INTO stats (vm_id, at, cpu, rss, balloon, disk_read, disk_write, net_rx, net_tx, nics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      prune: db.prepare('DELETE FROM stats WHERE at < ?'),
      forget: db.prepare('DELETE FROM stats WHERE vm_id = ?'),
      day: db.prepare<
        [string, number],
        {
          at: number;
          cpu: number;
          rss: number;
          balloon: number | null;
          disk_read: number;
          disk_write: number;
          net_rx: number | null;
          net_tx: number | null;
          nics: string | null;
        }
      >('SELECT at, cpu, rss, balloon, disk_read, disk_write, net_rx, net_tx, nics FROM stats WHERE vm_id = ? AND at >= ? ORDER BY at'),
    };
    this.add = db.transaction((rows: VmStats[], now: number) => {
      for (const s of rows)
        this.q.insert.run(
          s.vmId,
          s.at,
          s.cpuPercent,
          s.rssBytes,
          s.balloonBytes,
          s.diskReadBps,
          s.diskWriteBps,
          s.netRxBps,
          s.netTxBps,
          s.nics ? JSON.stringify(s.nics) : null,
        );
      this.q.prune.run(now - DAY_MS);
    });
  }

  readonly add: (rows: VmStats[], now: number) => void;

  /** Drops a VM's figures (history adopted for an arrival that failed). */
  forget(vmId: string): void {
    this.q.forget.run(vmId);
  }

  day(vmId: string, now: number): VmStats[] {
    return this.q.day.all(vmId, now - DAY_MS).map((r) => ({
      vmId,
      at: r.at,
      cpuPercent: r.cpu,
      rssBytes: r.rss,
      balloonBytes: r.balloon,
      diskReadBps: r.disk_read,
      diskWriteBps: r.disk_write,
      netRxBps: r.net_rx,
      netTxBps: r.net_tx,
      ...(r.nics ? { nics: readNics(r.nics) } : {}),
    }));
  }
}

/** A row's NIC figures; a row that does not parse reads as none rather than failing the day. */
function readNics(text: string): NicRate[] {
  try {
    const parsed = NicRate.array().safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : [];
  } catch {
    return [];
  }
}
