// VM rows: config (versioned), disks, and the runtime facts (state, pid, counters) that let a
// restarted host resume supervision exactly where the last one stopped.
import {
  CONFIG_DEFAULTS,
  type DiskConfig,
  type ExitInfo,
  type PortForward,
  type VmConfig,
  type VmInfo,
  type VmState,
} from '../api/contract.js';
import type { Statement } from 'better-sqlite3';
import { bootMaxCpus, bootMemoryMiB, exposure } from '../api/rules.js';
import { allForwards, LEGACY_MAC, sameNic } from '../api/nics.js';
import { makeDurable, type Db } from './db.js';

interface VmRow {
  id: string;
  name: string;
  config: string;
  config_version: number;
  created_at: number;
  state: VmState;
  state_since: number;
  pid: number | null;
  pid_start: string | null;
  restarts: number;
  last_exit: string | null;
  policy_state: string | null;
  restart_at: number | null;
  applied_config: string | null;
  started_at: number | null;
}

interface DiskRow {
  vm_id: string;
  idx: number;
  path: string;
  format: DiskConfig['format'];
  owned: number;
  base: string | null;
}

export interface VmRecord extends Omit<VmInfo, 'diskSizes' | 'booted'> {
  pidStart: string | null;
  /** The restart policy's own state (JSON), opaque here. */
  policyState: unknown;
  /** The config the running QEMU has (null when not running). */
  applied: VmConfig | null;
}

export interface RuntimePatch {
  state?: VmState;
  pid?: number | null;
  pidStart?: string | null;
  restarts?: number;
  lastExit?: ExitInfo | null;
  policyState?: unknown;
  restartAt?: number | null;
  applied?: VmConfig | null;
  startedAt?: number | null;
}

export class VmRepo {
  private readonly q;

  constructor(private readonly db: Db) {
    this.q = {
      all: db.prepare<[], VmRow>('SELECT * FROM vms ORDER BY name COLLATE NOCASE'),
      byId: db.prepare<[string], VmRow>('SELECT * FROM vms WHERE id = ?'),
      byName: db.prepare<[string], VmRow>('SELECT * FROM vms WHERE name = ?'),
      disks: db.prepare<[string], DiskRow>('SELECT * FROM disks WHERE vm_id = ? ORDER BY idx'),
      allDisks: db.prepare<[], DiskRow>('SELECT * FROM disks ORDER BY vm_id, idx'),
      insert: db.prepare(
        `INSERT INTO vms (id, name, config, config_version, created_at, state, state_since)
         VALUES (@id, @name, @config, 1, @createdAt, 'stopped', @now)`,
      ),
      insertDisk: db.prepare('INSERT INTO disks (vm_id, idx, path, format, owned, base) VALUES (?, ?, ?, ?, ?, ?)'),
      setDiskBase: db.prepare('UPDATE disks SET base = ? WHERE vm_id = ? AND idx = ?'),
      history: db.prepare('INSERT INTO vm_config_history (vm_id, version, config, at) VALUES (?, ?, ?, ?)'),
      updateConfig: db.prepare('UPDATE vms SET name = ?, config = ?, config_version = ? WHERE id = ?'),
      delete: db.prepare('DELETE FROM vms WHERE id = ?'),
      bootMemory: db.prepare<[], { id: string; mem: number | null; max: number | null }>(
        `SELECT id, json_extract(coalesce(applied_config, config), '$.memoryMiB') AS mem,
                json_extract(coalesce(applied_config, config), '$.maxMemoryMiB') AS max FROM vms`,
      ),
    };
  }

  list(): VmRecord[] {
    const disks = new Map<string, DiskRow[]>();
    for (const d of this.q.allDisks.all()) {
      const list = disks.get(d.vm_id) ?? [];
      list.push(d);
      disks.set(d.vm_id, list);
    }
    return this.q.all.all().map((r) => toRecord(r, disks.get(r.id) ?? []));
  }

  /**
   * The memory each VM boots with (its applied config while it runs), in MiB, read in SQL: the
   * resource monitor asks every 2 s, and parsing whole records for it cost more than sampling.
   */
  bootMemoryMiB(): Map<string, number> {
    return new Map(this.q.bootMemory.all().map((r) => [r.id, bootMemoryMiB({ memoryMiB: r.mem ?? 0, maxMemoryMiB: r.max })]));
  }

  get(id: string): VmRecord | undefined {
    const row = this.q.byId.get(id);
    return row && toRecord(row, this.q.disks.all(id));
  }

  /** By id first, then by (case-insensitive) name. */
  find(ref: string): VmRecord | undefined {
    const row = this.q.byId.get(ref) ?? this.q.byName.get(ref);
    return row && toRecord(row, this.q.disks.all(row.id));
  }

  nameTaken(name: string, exceptId?: string): boolean {
    const row = this.q.byName.get(name);
    return !!row && row.id !== exceptId;
  }

  /** createdAt: when the VM was first made, if that was elsewhere (a VM that moved here). */
  insert(id: string, name: string, config: VmConfig, now: number, createdAt = now): VmRecord {
    const { disks, ...rest } = config;
    const json = JSON.stringify(rest);
    this.db.transaction(() => {
      this.q.insert.run({ id, name, config: json, now, createdAt });
      disks.forEach((d, i) => this.q.insertDisk.run(id, i, d.path, d.format, d.owned ? 1 : 0, d.base ?? null));
      this.q.history.run(id, 1, JSON.stringify(config), now);
    })();
    makeDurable(this.db);
    return this.get(id)!;
  }

  /** Saves a new config version (disks are not edited here). */
  updateConfig(id: string, name: string, config: VmConfig, now: number): VmRecord {
    const cur = this.get(id);
    if (!cur) throw new Error(`no VM ${id}`);
    const { disks: _disks, ...rest } = config;
    const version = cur.configVersion + 1;
    this.db.transaction(() => {
      this.q.updateConfig.run(name, JSON.stringify(rest), version, id);
      this.q.history.run(id, version, JSON.stringify(config), now);
    })();
    makeDurable(this.db);
    return this.get(id)!;
  }

  /** A disk became an overlay on a managed base (its source disk turned into the base). */
  setDiskBase(id: string, idx: number, base: string): void {
    this.q.setDiskBase.run(base, id, idx);
  }

  setRuntime(id: string, patch: RuntimePatch, now: number): void {
    const sets: string[] = [];
    const vals: unknown[] = [];
    const add = (sql: string, ...v: unknown[]) => {
      sets.push(sql);
      vals.push(...v);
    };
    if (patch.state !== undefined) add('state = ?, state_since = ?', patch.state, now);
    if (patch.pid !== undefined) add('pid = ?', patch.pid);
    if (patch.pidStart !== undefined) add('pid_start = ?', patch.pidStart);
    if (patch.restarts !== undefined) add('restarts = ?', patch.restarts);
    if (patch.lastExit !== undefined) add('last_exit = ?', patch.lastExit && JSON.stringify(patch.lastExit));
    if (patch.policyState !== undefined) add('policy_state = ?', JSON.stringify(patch.policyState));
    if (patch.restartAt !== undefined) add('restart_at = ?', patch.restartAt);
    if (patch.applied !== undefined) add('applied_config = ?', patch.applied && JSON.stringify(patch.applied));
    if (patch.startedAt !== undefined) add('started_at = ?', patch.startedAt);
    if (!sets.length) return;
    // the SQL depends only on which fields are set, so a handful of statements are cached
    this.stmt(`UPDATE vms SET ${sets.join(', ')} WHERE id = ?`).run(...vals, id);
  }

  delete(id: string): void {
    this.q.delete.run(id);
    makeDurable(this.db);
  }

  /**
   * Runs fn's writes as one transaction: one commit for all of them, which clients hear of
   * together. Nested calls join the outer transaction.
   */
  transaction<T>(fn: () => T): T {
    return this.db.inTransaction ? fn() : this.db.transaction(fn)();
  }

  private cache = new Map<string, Statement<unknown[]>>();
  private stmt(sql: string): Statement<unknown[]> {
    let s = this.cache.get(sql);
    if (!s) this.cache.set(sql, (s = this.db.prepare<unknown[]>(sql)));
    return s;
  }
}

/** A stored config with defaults for what an older Corral did not write. */
function parseConfig(json: string): Omit<VmConfig, 'disks'> {
  const stored = JSON.parse(json) as Partial<VmConfig>;
  const c = { ...CONFIG_DEFAULTS, ...stored } as Omit<VmConfig, 'disks'>;
  // VMs made before CPU models were pinned ran on QEMU's "max" (all the accelerator offers): a
  // guest installed on it may need features the portable default lacks, so it keeps "max"
  if (!('cpuModel' in stored)) c.cpuModel = 'max';
  // forwards saved before the "exposed" flag existed were set up by someone with full rights:
  // they keep working, and are shown as exposed where they are
  c.forwards = c.forwards.map((f) => ('exposed' in f ? f : { ...(f as PortForward), exposed: exposure(f) !== null }));
  // before NICs were a list every VM had one slirp NIC with QEMU's first MAC: it keeps both
  if (!('nics' in stored)) c.nics = [{ id: 'net0', kind: 'user', mac: LEGACY_MAC, bridge: null, network: null, forwards: c.forwards }];
  return c;
}

function toRecord(r: VmRow, disks: DiskRow[]): VmRecord {
  const rest = parseConfig(r.config);
  const config: VmConfig = {
    ...rest,
    disks: disks.map((d) => ({ path: d.path, format: d.format, owned: d.owned === 1, ...(d.base ? { base: d.base } : {}) })),
  };
  const applied = r.applied_config ? (parseConfig(r.applied_config) as VmConfig) : null;
  return {
    id: r.id,
    name: r.name,
    state: r.state,
    stateSince: r.state_since,
    pid: r.pid,
    pidStart: r.pid_start,
    restarts: r.restarts,
    lastExit: r.last_exit ? (JSON.parse(r.last_exit) as ExitInfo) : null,
    restartAt: r.restart_at,
    startedAt: r.started_at,
    policyState: r.policy_state ? (JSON.parse(r.policy_state) as unknown) : null,
    config,
    applied,
    pending: applied ? pendingKeys(config, applied) : [],
    configVersion: r.config_version,
    createdAt: r.created_at,
  };
}

export function publicInfo(r: VmRecord, diskSizes: Array<number | null>): VmInfo {
  const { pidStart: _p, policyState: _s, applied, ...info } = r;
  return {
    ...info,
    diskSizes,
    booted: applied
      ? {
          memoryMiB: bootMemoryMiB(applied),
          maxCpus: bootMaxCpus(applied),
          cpus: applied.cpus,
          forwards: allForwards(applied),
          nics: applied.nics,
        }
      : null,
  };
}

/** Settings whose saved value differs from what the running QEMU has. */
export function pendingKeys(config: VmConfig, applied: VmConfig): string[] {
  // a NIC added live is marked so in what QEMU has: that is where it sits, not a setting
  const sameNics = () => config.nics.length === applied.nics.length && config.nics.every((n, i) => sameNic(n, applied.nics[i]!));
  return (Object.keys(config) as Array<keyof VmConfig>).filter(
    (k) => k !== 'disks' && (k === 'nics' ? !sameNics() : JSON.stringify(config[k]) !== JSON.stringify(applied[k])),
  );
}
