// The audit log: one row per mutating call, newest last.
import type { AuditEntry } from '../api/contract.js';
import type { Db } from './db.js';

interface Row {
  id: number;
  at: number;
  who: string;
  method: string;
  target: string | null;
  address: string | null;
  ok: number;
  error: string | null;
}

export class AuditRepo {
  private readonly q;

  constructor(db: Db) {
    this.q = {
      add: db.prepare('INSERT INTO audit (at, who, method, target, address, ok, error) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      list: db.prepare<[number], Row>('SELECT * FROM audit ORDER BY id DESC LIMIT ?'),
    };
  }

  add(e: Omit<AuditEntry, 'id'>): void {
    this.q.add.run(e.at, e.who, e.method, e.target, e.address, e.ok ? 1 : 0, e.error);
  }

  /** Newest first. */
  list(limit: number): AuditEntry[] {
    return this.q.list.all(limit).map((r) => ({ ...r, ok: r.ok === 1 }));
  }
}
