// Storage pools registered by an admin: a name and a directory (its real path).
import { makeDurable, type Db } from './db.js';

export interface PoolRow {
  name: string;
  path: string;
  /** Every host of the cluster reaches it at the same path. */
  shared: boolean;
  createdAt: number;
}

export class PoolRepo {
  private readonly q;

  constructor(private readonly db: Db) {
    this.q = {
      all: db.prepare<[], { name: string; path: string; shared: number; created_at: number }>(
        'SELECT * FROM pools ORDER BY name COLLATE NOCASE',
      ),
      insert: db.prepare('INSERT INTO pools (name, path, shared, created_at) VALUES (?, ?, ?, ?)'),
      remove: db.prepare('DELETE FROM pools WHERE name = ?'),
    };
  }

  list(): PoolRow[] {
    return this.q.all.all().map((r) => ({ name: r.name, path: r.path, shared: r.shared === 1, createdAt: r.created_at }));
  }

  insert(name: string, path: string, at: number, shared = false): void {
    this.q.insert.run(name, path, shared ? 1 : 0, at);
    makeDurable(this.db);
  }

  remove(name: string): boolean {
    const removed = this.q.remove.run(name).changes > 0;
    makeDurable(this.db);
    return removed;
  }
}
