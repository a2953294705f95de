// VMs moving between the hosts of a cluster, as this window sees them: each move it started
// ("Move to…": vm.migrate, which answers when the move ended) and the figures the host pushes
// while a migration runs (migration.progress, about twice a second, for any VM of this host,
// evacuations included). Kept per host connection so a dialog closed and opened again finds
// its move where it was.
import type { EvacuatedVm, EvacuationProgress, MigrateResult, MigrationProgress, VmInfo } from '../../../electron/core/api/contract';
import { errorMessage, type ApiClient } from './api';
import { toasts } from './toasts.svelte';

/** Figures come about once a second from another host: this long without any, a move is not shown. */
const QUIET_MS = 10_000;

export interface MoveRun {
  vm: string;
  from: string;
  to: string;
  live: boolean;
  status: 'running' | 'cancelling' | 'done' | 'failed';
  result: MigrateResult | null;
  error: string | null;
}

/** An evacuation or restore of one host, started here or seen through its events. */
export interface HostRun {
  op: 'evacuate' | 'restore';
  status: 'running' | 'done' | 'failed';
  /** The host's last word on it. */
  last: EvacuationProgress | null;
  /** What happened to each VM, as the host answered at the end. */
  vms: EvacuatedVm[];
  error: string | null;
  /** Seen through its events only: its end is the host's last event, not an answer here. */
  seen?: boolean;
}

export class MoveStore {
  /** The last figures of each VM's migration, by VM id. */
  progress = $state<Record<string, MigrationProgress>>({});
  /** When they came (a move whose figures stopped coming is no longer shown as under way). */
  #heard: Record<string, number> = {};
  /** The moves this window started, by VM id. */
  runs = $state<Record<string, MoveRun>>({});
  /** The VM whose "Move to…" dialog is open (the window's, kept here so it outlives the VM's page). */
  dialogFor = $state.raw<VmInfo | null>(null);
  /** Evacuations and restores, by host name. */
  hosts = $state<Record<string, HostRun>>({});
  #api: ApiClient;

  constructor(api: ApiClient) {
    this.#api = api;
    api.on('migration.progress', (p) => {
      this.progress[p.vmId] = p;
      this.#heard[p.vmId] = Date.now();
    });
    api.on('host.evacuation', (p) => {
      const run = this.hosts[p.host];
      // one started elsewhere (the CLI, another window, another host) shows here too, and
      // ends with its last event (no VM named, all handled)
      const ends = p.vm === null && p.done === p.total;
      const starts = p.vm === null && p.done === 0;
      // another host's steps come through etcd and may trail the answer to our own call
      if (run && run.op === p.op && !run.seen && run.status !== 'running' && !starts) return;
      if (!run || run.op !== p.op || run.status !== 'running')
        this.hosts[p.host] = { op: p.op, status: ends ? 'done' : 'running', last: p, vms: [], error: null, seen: true };
      else {
        run.last = p;
        if (run.seen && ends) run.status = 'done';
      }
    });
  }

  /** host.evacuate or host.restore; resolves when the host answered (the run says how it went). */
  async host(name: string, op: 'evacuate' | 'restore', bringBack = false): Promise<void> {
    this.hosts[name] = { op, status: 'running', last: null, vms: [], error: null };
    try {
      const vms =
        op === 'evacuate'
          ? (await this.#api.call('host.evacuate', { host: name })).vms
          : (await this.#api.call('host.restore', { host: name, bringBack })).returned;
      this.hosts[name] = { ...this.hosts[name]!, status: 'done', vms };
      toasts.success(op === 'evacuate' ? `${name} is in maintenance` : `${name} takes VMs again`, '');
    } catch (err) {
      this.hosts[name] = { ...this.hosts[name]!, status: 'failed', error: errorMessage(err) };
    }
  }

  dismissHost(name: string): void {
    if (this.hosts[name]?.status !== 'running') delete this.hosts[name];
  }

  /** Moves the VM; resolves when the host says how it ended (never rejects: the run says). */
  async start(vmId: string, vmName: string, from: string, to: string, live: boolean): Promise<void> {
    delete this.progress[vmId];
    this.runs[vmId] = { vm: vmName, from, to, live, status: 'running', result: null, error: null };
    try {
      const result = await this.#api.call('vm.migrate', { vm: vmId, to });
      this.runs[vmId] = { ...this.runs[vmId]!, status: 'done', result };
      toasts.success(`“${vmName}” moved to ${to}`, '');
    } catch (err) {
      this.runs[vmId] = { ...this.runs[vmId]!, status: 'failed', error: errorMessage(err) };
      toasts.error(`“${vmName}” did not move`, `${errorMessage(err)}. It ${live ? 'still runs' : 'stays'} on ${from}.`);
    }
  }

  async cancel(vmId: string): Promise<void> {
    const run = this.runs[vmId];
    if (run?.status === 'running') this.runs[vmId] = { ...run, status: 'cancelling' };
    try {
      await this.#api.call('vm.migrateCancel', { vm: vmId });
    } catch (err) {
      // the move may have ended meanwhile: its own answer says how
      if (this.runs[vmId]?.status === 'cancelling') this.runs[vmId] = { ...this.runs[vmId]!, status: 'running' };
      throw err;
    }
  }

  /**
   * The figures of a move under way, started anywhere (this window, the CLI, another host's UI):
   * null once it ended or when nothing was heard of it for a while (its host went quiet).
   */
  underWay(vmId: string, now: number): MigrationProgress | null {
    const p = this.progress[vmId];
    if (!p || p.phase === 'done' || p.phase === 'failed') return null;
    return now - (this.#heard[vmId] ?? 0) < QUIET_MS ? p : null;
  }

  /** Forgets an ended move (the dialog was closed on its end state). */
  dismiss(vmId: string): void {
    const run = this.runs[vmId];
    if (run && (run.status === 'done' || run.status === 'failed')) delete this.runs[vmId];
  }
}
