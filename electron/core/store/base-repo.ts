// Managed bases of linked clones: read-only images Corral made, and which disks stand on them.
import type { Db } from './db.js';

export interface BaseRow {
  path: string;
  /** The VM the base was made from (its name then). */
  source: string;
  createdAt: number;
  /** The VMs whose disks are overlays on it. */
  dependents: Array<{ vmId: string; vmName: string }>;
}

export class BaseRepo {
  private readonly q;

  constructor(db: Db) {
    this.q = {
      all: db.prepare<[], { path: string; source: string; created_at: number }>('SELECT * FROM bases ORDER BY created_at'),
      dependents: db.prepare<[string], { vm_id: string; name: string }>(
        'SELECT DISTINCT d.vm_id, v.name FROM disks d JOIN vms v ON v.id = d.vm_id WHERE d.base = ? ORDER BY v.name',
      ),
      insert: db.prepare('INSERT INTO bases (path, source, created_at) VALUES (?, ?, ?)'),
      remove: db.prepare('DELETE FROM bases WHERE path = ?'),
    };
  }

  list(): BaseRow[] {
    return this.q.all.all().map((r) => ({
      path: r.path,
      source: r.source,
      createdAt: r.created_at,
      dependents: this.q.dependents.all(r.path).map((d) => ({ vmId: d.vm_id, vmName: d.name })),
    }));
  }

  get(path: string): BaseRow | undefined {
    return this.list().find((b) => b.path === path);
  }

  insert(path: string, source: string, at: number): void {
    this.q.insert.run(path, source, at);
  }

  /** Forgets a base; the foreign key refuses while a disk stands on it. */
  remove(path: string): void {
    this.q.remove.run(path);
  }
}
