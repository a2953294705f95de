// Load balancing on one host of a cluster: the cluster-wide flag and the records of moves (both
// in etcd, followed by watches), the load figures every host publishes put into the decisions'
// view, what this host could not run (published for the leader), the leader's shedder, and the
// VM's own events for a move: each host tells the journal of the VMs it holds.
import type { Etcd3, Watcher } from 'etcd3';
import type { BalanceReport } from '../api/contract.js';
import { BALANCE_DEFAULTS, type BalanceOptions } from '../ha/decisions/balance.js';
import type { HaVm, HostView } from '../ha/decisions/model.js';
import type { Vms } from '../vms/index.js';
import { tpmRefusal } from '../vms/migration/refusals.js';
import type { HostDirectory } from './directory.js';
import { LoadShedder } from './ha-shed.js';
import type { Inventory, StoredConfig } from './inventory.js';
import { keys } from './keys.js';
import { parseShed, restsFrom, type ShedRecord } from './shed-records.js';

const MiB = 2 ** 20;
/** A record that ended longer ago than this when the host started was told already. */
const TOLD_WITHIN_MS = 60_000;

export interface HaBalancingDeps {
  etcd: Etcd3;
  hostId: string;
  vms: Vms;
  directory: HostDirectory;
  inventory: Inventory;
  isLeader(): boolean;
  snapshot(): { hosts: HostView[]; vms: Array<HaVm & { id: string }> };
  configs(): StoredConfig[];
  /** Live-migrates `vm` from host `from` (an id) to the host named `to`. */
  migrate(from: string, vm: string, to: string): Promise<unknown>;
  log(line: string): void;
  env?: NodeJS.ProcessEnv;
}

/**
 * The balancer's tunables: the shipped defaults, or a JSON object of some of them in
 * CORRAL_HA_BALANCE_OPTIONS (tests shorten the holding time and the cooldown with it).
 */
export function balanceOptions(env: NodeJS.ProcessEnv = process.env): BalanceOptions {
  const text = env.CORRAL_HA_BALANCE_OPTIONS;
  if (!text) return BALANCE_DEFAULTS;
  const given = JSON.parse(text) as Record<string, unknown>;
  const o = { ...BALANCE_DEFAULTS };
  for (const k of Object.keys(o) as Array<keyof BalanceOptions>) {
    const v = given[k];
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) o[k] = v;
  }
  return o;
}

export class HaBalancing {
  private on = false;
  private readonly records = new Map<string, ShedRecord>();
  private readonly told = new Set<string>();
  private watchers: Watcher[] = [];
  readonly shedder: LoadShedder;
  readonly opts: BalanceOptions;

  constructor(private readonly d: HaBalancingDeps) {
    this.opts = balanceOptions(d.env);
    this.shedder = new LoadShedder({
      etcd: d.etcd,
      isLeader: d.isLeader,
      enabled: () => this.on,
      snapshot: d.snapshot,
      records: () => [...this.records.values()],
      loadOf: (id) => d.directory.alive.get(id)?.load,
      migrate: d.migrate,
      hostName: (id) => d.directory.nameOf(id),
      log: d.log,
      opts: this.opts,
    });
  }

  async start(): Promise<void> {
    const flag = await this.d.etcd.watch().key(keys.haBalance).create();
    flag.on('put', (kv) => (this.on = kv.value.toString() === 'on'));
    flag.on('delete', () => (this.on = false));
    this.watchers.push(flag);
    this.on = (await this.d.etcd.get(keys.haBalance).string()) === 'on';
    const w = await this.d.etcd.watch().prefix(keys.haSheds).create();
    w.on('put', (kv) => this.onRecord(kv.value.toString(), false));
    w.on('delete', (kv) => this.records.delete(kv.key.toString().slice(keys.haSheds.length)));
    w.on('error', (err) => this.d.log(`ha: watch ${keys.haSheds}: ${String(err)}`));
    this.watchers.push(w);
    for (const v of Object.values(await this.d.etcd.getAll().prefix(keys.haSheds).strings())) this.onRecord(v, true);
  }

  enabled(): boolean {
    return this.on;
  }

  async set(on: boolean): Promise<void> {
    await this.d.etcd.put(keys.haBalance).value(on ? 'on' : 'off');
    this.on = on;
  }

  /** Each VM's last move: its cooldown counts from there. */
  cooldowns(): Array<{ vm: string; at: number }> {
    return [...this.records.values()].map((r) => ({ vm: r.vm, at: restsFrom(r) }));
  }

  /** The moves, newest first, with host names (for ha.balance). */
  moves(): NonNullable<BalanceReport['moves']> {
    const name = (id: string) => this.d.directory.nameOf(id);
    return [...this.records.values()]
      .sort((a, b) => b.at - a.at)
      .map((r) => ({
        vm: r.vm,
        from: name(r.from),
        to: name(r.to),
        at: r.at,
        endedAt: r.endedAt,
        outcome: r.outcome,
        why: r.why,
        error: r.error,
      }));
  }

  /** The hosts with what their guests use and what they could not run (by VM name). */
  hostViews(hosts: HostView[]): HostView[] {
    const names = new Map(this.d.configs().map((c) => [c.vmId, c.name]));
    return hosts.map((h) => {
      const a = this.d.directory.alive.get(h.id);
      const cannotRun = Object.fromEntries(Object.entries(a?.cannotRun ?? {}).map(([id, why]) => [names.get(id) ?? id, why]));
      return a?.load ? { ...h, memUsedMiB: a.load.memBytes / MiB, cpuUsed: a.load.cpu, cannotRun } : { ...h, cannotRun };
    });
  }

  /** The HA VMs with what each uses on its host, and why one may not be live-migrated now. */
  vmViews<V extends HaVm & { id: string }>(vms: V[]): V[] {
    return vms.map((v) => {
      const used = this.d.directory.alive.get(v.owner)?.load?.vms[v.id];
      const cannotMove = this.cannotMove(v);
      return {
        ...v,
        ...(used ? { memUsedMiB: used.memBytes / MiB, cpuUsed: used.cpu } : {}),
        ...(cannotMove ? { cannotMove } : {}),
      };
    });
  }

  private cannotMove(v: HaVm & { id: string }): string | null {
    const local = this.d.vms.ctx.vms.get(v.id);
    const info = local ? this.d.vms.service.get(v.id) : this.d.inventory.find(v.id);
    const state = info?.state;
    if (state !== 'running') return `it is ${state ?? 'not reported by its host'}: only a running guest's load can move`;
    const up = Date.now() - (info?.startedAt ?? 0);
    const least = this.opts.minUptimeMs ?? 0;
    if (up < least) return `it started ${Math.round(up / 1000)} s ago: it may move once it has run ${least / 1000} s`;
    const config = local?.config ?? this.d.configs().find((c) => c.vmId === v.id)?.config;
    return config ? tpmRefusal(v.name, config) : null;
  }

  /** HA VMs of other hosts this host's QEMU could not run, by id (published with its room). */
  cannotRun(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const c of this.d.configs()) {
      if (!c.config.ha.enabled || this.d.vms.ctx.vms.get(c.vmId)) continue;
      const why = this.d.vms.ctx.driver.problemFor(c.config);
      if (why) out[c.vmId] = why;
    }
    return out;
  }

  tick(): Promise<void> {
    return this.shedder.tick();
  }

  private onRecord(text: string, atStart: boolean): void {
    const r = parseShed(text);
    if (!r) return;
    this.records.set(r.vmId, r);
    const key = `${r.vmId}@${r.at}:${r.outcome}`;
    if (atStart && Date.now() - restsFrom(r) > TOLD_WITHIN_MS) this.told.add(key);
    if (this.told.has(key)) return;
    this.told.add(key);
    this.tell(r);
  }

  /** The VM's events and a notification, on the host that holds its record now. */
  private tell(r: ShedRecord): void {
    const rec = this.d.vms.ctx.vms.get(r.vmId);
    if (!rec) return;
    const name = (id: string) => this.d.directory.nameOf(id);
    const loads = Object.entries(r.loads)
      .map(([h, l]) => `${h} ${l}`)
      .join(', ');
    const figures = `imbalance ${r.before.toFixed(3)} → ${r.after.toFixed(3)}; loads ${loads}`;
    const j = this.d.vms.journal;
    if (r.outcome === 'moving' && r.from === this.d.hostId)
      j.note(rec, `Load balancing moves it to host ${name(r.to)}: ${r.why} (${figures})`, 'ha-balance');
    else if (r.outcome === 'moved' && r.to === this.d.hostId) {
      j.note(rec, `Moved here from host ${name(r.from)} by load balancing: ${r.why} (${figures})`, 'ha-balance');
      j.notify(rec, 'info', 'Load balanced', `"${r.vm}" moved from host ${name(r.from)} to ${name(r.to)}: ${r.why}.`);
    } else if (r.outcome === 'failed' && r.from === this.d.hostId) {
      j.error(rec, `Load balancing could not move it to host ${name(r.to)}: ${r.error ?? 'unknown error'} (${figures})`);
      j.notify(
        rec,
        'warning',
        'Load balancing failed',
        `"${r.vm}" stays on host ${name(r.from)}: ${r.error ?? 'unknown error'}. It rests for its cooldown.`,
      );
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.watchers.splice(0).map((w) => w.cancel().catch(() => undefined)));
  }
}
