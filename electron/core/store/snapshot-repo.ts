// Snapshot rows (one tree per VM), each VM's position in its tree and its schedule.
import { CONFIG_DEFAULTS, type SnapshotInfo, type SnapshotSchedule, type VmConfig } from '../api/contract.js';
import type { Db } from './db.js';

interface SnapshotRow {
  id: string;
  vm_id: string;
  parent_id: string | null;
  name: string;
  description: string;
  created_at: number;
  has_ram: number;
  kind: SnapshotInfo['kind'];
  config: string;
  pause_ms: number | null;
  consistency: SnapshotInfo['consistency'];
  scheduled: number;
  files: string;
}

interface HeadRow {
  vm_id: string;
  current_id: string | null;
  every_sec: number | null;
  keep: number | null;
  next_at: number | null;
}

/** Which files hold a snapshot's tag beside the disks. */
interface Files {
  vars: boolean;
  tpm: boolean;
}

export interface Head {
  currentId: string | null;
  schedule: (SnapshotSchedule & { nextAt: number | null }) | null;
}

export class SnapshotRepo {
  private readonly q;

  constructor(private readonly db: Db) {
    this.q = {
      byVm: db.prepare<[string], SnapshotRow>('SELECT * FROM snapshots WHERE vm_id = ? ORDER BY created_at, rowid'),
      insert: db.prepare(
        `INSERT INTO snapshots (id, vm_id, parent_id, name, description, created_at, has_ram, kind, config, pause_ms, consistency, scheduled, files)
         VALUES (@id, @vm_id, @parent_id, @name, @description, @created_at, @has_ram, @kind, @config, @pause_ms, @consistency, @scheduled, @files)`,
      ),
      remove: db.prepare('DELETE FROM snapshots WHERE id = ?'),
      exists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM snapshots WHERE id = ?'),
      reparent: db.prepare('UPDATE snapshots SET parent_id = ? WHERE parent_id = ? AND vm_id = ?'),
      head: db.prepare<[string], HeadRow>('SELECT * FROM snapshot_heads WHERE vm_id = ?'),
      ensureHead: db.prepare('INSERT OR IGNORE INTO snapshot_heads (vm_id) VALUES (?)'),
      setCurrent: db.prepare('UPDATE snapshot_heads SET current_id = ? WHERE vm_id = ?'),
      setSchedule: db.prepare('UPDATE snapshot_heads SET every_sec = ?, keep = ?, next_at = ? WHERE vm_id = ?'),
      scheduled: db.prepare<[], HeadRow>('SELECT * FROM snapshot_heads WHERE every_sec IS NOT NULL'),
    };
  }

  list(vmId: string): SnapshotInfo[] {
    return this.q.byVm.all(vmId).map(toInfo);
  }

  head(vmId: string): Head {
    const row = this.q.head.get(vmId);
    return row ? toHead(row) : { currentId: null, schedule: null };
  }

  /** The VMs that have a schedule, with it. */
  schedules(): Array<{ vmId: string } & Head> {
    return this.q.scheduled.all().map((r) => ({ vmId: r.vm_id, ...toHead(r) }));
  }

  /** Whether a snapshot id (a qcow2 tag) is in use on this host. */
  exists(id: string): boolean {
    return this.q.exists.get(id) !== undefined;
  }

  /** Adds a snapshot and makes it the VM's current position, in one transaction. */
  add(s: SnapshotInfo): void {
    this.db.transaction(() => this.insertRow(s))();
  }

  /** A whole tree at once (an imported bundle's), with its current position, in one transaction. */
  addTree(vmId: string, rows: SnapshotInfo[], currentId: string | null): void {
    this.db.transaction(() => {
      for (const s of rows) this.insertRow(s);
      this.q.ensureHead.run(vmId);
      this.q.setCurrent.run(currentId, vmId);
    })();
  }

  private insertRow(s: SnapshotInfo): void {
    this.q.insert.run({
      id: s.id,
      vm_id: s.vmId,
      parent_id: s.parentId,
      name: s.name,
      description: s.description,
      created_at: s.createdAt,
      has_ram: s.hasRam ? 1 : 0,
      kind: s.kind,
      config: JSON.stringify(s.config),
      pause_ms: s.pauseMs,
      consistency: s.consistency,
      scheduled: s.scheduled ? 1 : 0,
      files: JSON.stringify({ vars: s.withVars, tpm: s.withTpm } satisfies Files),
    });
    this.q.ensureHead.run(s.vmId);
    this.q.setCurrent.run(s.id, s.vmId);
  }

  /** Removes a snapshot: its children move to its parent, and "you are here" too if it was here. */
  remove(s: SnapshotInfo): void {
    this.db.transaction(() => {
      this.q.reparent.run(s.parentId, s.id, s.vmId);
      this.q.remove.run(s.id);
      if (this.head(s.vmId).currentId === s.id) this.q.setCurrent.run(s.parentId, s.vmId);
    })();
  }

  setCurrent(vmId: string, id: string | null): void {
    this.q.ensureHead.run(vmId);
    this.q.setCurrent.run(id, vmId);
  }

  setSchedule(vmId: string, schedule: SnapshotSchedule | null, nextAt: number | null): void {
    this.q.ensureHead.run(vmId);
    this.q.setSchedule.run(schedule?.everySec ?? null, schedule?.keep ?? null, schedule ? nextAt : null, vmId);
  }
}

function toHead(r: HeadRow): Head {
  return {
    currentId: r.current_id,
    schedule: r.every_sec !== null && r.keep !== null ? { everySec: r.every_sec, keep: r.keep, nextAt: r.next_at } : null,
  };
}

function toInfo(r: SnapshotRow): SnapshotInfo {
  const files = JSON.parse(r.files) as Files;
  return {
    id: r.id,
    vmId: r.vm_id,
    parentId: r.parent_id,
    name: r.name,
    description: r.description,
    createdAt: r.created_at,
    hasRam: r.has_ram === 1,
    kind: r.kind,
    consistency: r.consistency,
    pauseMs: r.pause_ms,
    scheduled: r.scheduled === 1,
    withVars: files.vars,
    withTpm: files.tpm,
    // settings added since the snapshot was taken get their defaults, as for stored VMs
    config: { ...CONFIG_DEFAULTS, ...(JSON.parse(r.config) as Partial<VmConfig>) } as VmConfig,
  };
}
