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
}

export type NewEvent = Omit<EventRecord, 'id' | 'report'> & { report?: CrashReport | null };

export class EventRepo {
  private readonly q;

  constructor(db: Db) {
    this.q = {
      insert: db.prepare(
        `INSERT INTO events (vm_id, vm_name, at, kind, from_state, to_state, reason, message, detail)
         VALUES (@vmId, @vmName, @at, @kind, @from, @to, @reason, @message, @detail)`,
      ),
      recent: db.prepare<[number], EventRow>('SELECT * FROM events ORDER BY id DESC LIMIT ?'),
      recentForVm: db.prepare<[string, number], EventRow>('SELECT * FROM events WHERE vm_id = ? ORDER BY id DESC LIMIT ?'),
    };
  }

  add(e: NewEvent): EventRecord {
    const { report = null, ...rest } = e;
    const info = this.q.insert.run({ ...rest, detail: report ? JSON.stringify({ report }) : null });
    return { id: Number(info.lastInsertRowid), ...rest, report };
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
    }));
  }
}
