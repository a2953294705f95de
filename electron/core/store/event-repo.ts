// The lifecycle log: every transition with a timestamp and a reason.
import type { CrashReport, EventRecord } from '../api/contract.js';
import type { Db } from './db.js';

interface EventRow {
  id: number;
  vm_id: string | null;
  vm_name: string | null;
  at: number;
  kind: EventRecord['kind'];
  from_state: string | null;
  to_state: string | null;
  reason: string | null;
  message: string;
  detail: string | null;
  host: string | null;
}

export type NewEvent = Omit<EventRecord, 'id' | 'report' | 'host'> & { report?: CrashReport | null; host?: string | null };

export class EventRepo {
  private readonly q;

  constructor(db: Db) {
    this.q = {
      insert: db.prepare(
        `INSERT INTO events (vm_id, vm_name, at, kind, from_state, to_state, reason, message, detail, host)
         VALUES (@vmId, @vmName, @at, @kind, @from, @to, @reason, @message, @detail, @host)`,
      ),
      // what happened on this host: a moved VM's earlier history stays out of the host's log
      recent: db.prepare<[number], EventRow>('SELECT * FROM events WHERE host IS NULL ORDER BY id DESC LIMIT ?'),
      // by time: a VM that came back holds its own earlier events beside those it brought
      recentForVm: db.prepare<[string, number], EventRow>('SELECT * FROM events WHERE vm_id = ? ORDER BY at DESC, id DESC LIMIT ?'),
      removeRange: db.prepare<[string, number, number]>('DELETE FROM events WHERE vm_id = ? AND id BETWEEN ? AND ?'),
    };
    this.addAll = db.transaction((events: NewEvent[]) => events.map((e) => this.add(e).id));
  }

  add(e: NewEvent): EventRecord {
    const { report = null, host = null, ...rest } = e;
    const info = this.q.insert.run({ ...rest, host, detail: report ? JSON.stringify({ report }) : null });
    return { id: Number(info.lastInsertRowid), ...rest, report, ...(host ? { host } : {}) };
  }

  /** Several events in one transaction, oldest first; their ids. */
  readonly addAll: (events: NewEvent[]) => number[];

  /** Removes a VM's events with ids in [first, last] (history adopted for an arrival that failed). */
  removeRange(vmId: string, first: number, last: number): void {
    this.q.removeRange.run(vmId, first, last);
  }

  /** Newest first. */
  list(limit: number, vmId?: string): EventRecord[] {
    const rows = vmId ? this.q.recentForVm.all(vmId, limit) : this.q.recent.all(limit);
    return rows.map((r) => ({
      id: r.id,
      vmId: r.vm_id,
      vmName: r.vm_name,
      at: r.at,
      kind: r.kind,
      from: r.from_state,
      to: r.to_state,
      reason: r.reason,
      message: r.message,
      report: r.detail ? ((JSON.parse(r.detail) as { report?: CrashReport }).report ?? null) : null,
      ...(r.host ? { host: r.host } : {}),
    }));
  }
}
