// What happens to VMs, told once: state transitions (checked against the state machine) and
// other events are written to the event log and pushed to clients; notifications go to the
// desktop or the browser. Every module that changes a VM reports through here.
//
// Each write is a commit. What belongs together (a transition and the runtime facts it comes
// with, the end of a run and the restart it leads to) is written in one transaction with
// atomically(), and clients hear of it once it has committed.
import { EventEmitter } from 'node:events';
import type { CrashReport, EventRecord, VmInfo, VmState } from '../api/contract.js';
import type { Clock } from '../clock.js';
import type { EventRepo } from '../store/event-repo.js';
import type { RuntimePatch, VmRecord, VmRepo } from '../store/vm-repo.js';
import { canTransition } from '../supervisor/state.js';

export interface Notification {
  vmId: string;
  vmName: string;
  level: 'info' | 'warning' | 'error';
  title: string;
  body: string;
}

export interface JournalEvents {
  changed: [VmInfo];
  removed: [{ id: string; name: string }];
  logged: [EventRecord];
  notify: [Notification];
}

type Named = { id: string; name: string };

export interface TransitionExtras {
  /** Runtime facts written with the new state, in the same row update. */
  patch?: RuntimePatch;
  report?: CrashReport | null;
}

export class Journal extends EventEmitter<JournalEvents> {
  constructor(
    private readonly vms: VmRepo,
    private readonly events: EventRepo,
    private readonly clock: Clock,
    /** The public view of a VM (with disk sizes), for vm.changed. */
    private readonly describe: (rec: VmRecord) => VmInfo,
  ) {
    super();
  }

  /** Emits held back while a transaction is open; null outside one. */
  private held: Array<() => void> | null = null;
  /** Work to do at the end of the open transaction, inside it (see lastInTransaction). */
  private last: Array<() => void> = [];
  /** Settles with the open transaction: committed or rolled back. */
  private outcome: { promise: Promise<void>; settle: (err?: unknown) => void } | null = null;

  /**
   * Runs fn's writes as one transaction (one commit). What they would emit goes out after the
   * commit, in order; nothing goes out if fn throws. Nested calls join the outer one.
   */
  atomically<T>(fn: () => T): T {
    if (this.held) return fn();
    const held: Array<() => void> = (this.held = []);
    let out: T;
    try {
      out = this.vms.transaction(() => {
        const r = fn();
        for (let next = this.last.shift(); next; next = this.last.shift()) next();
        return r;
      });
    } catch (err) {
      this.held = null;
      this.last = [];
      this.settle(err);
      throw err;
    }
    this.held = null;
    try {
      for (const emit of held) emit();
    } finally {
      this.settle();
    }
    return out;
  }

  private settle(err?: unknown): void {
    const outcome = this.outcome;
    this.outcome = null;
    outcome?.settle(err);
  }

  /** Runs fn at the end of the open transaction, after what is under way, in the same commit (now outside one). */
  lastInTransaction(fn: () => void): void {
    if (this.held) this.last.push(fn);
    else fn();
  }

  /**
   * Resolves once what was written so far is durable: at once outside a transaction, after its
   * commit inside one (rejects if it rolls back). Whatever must not happen before the commit
   * (spawning a QEMU the record does not know yet) waits for this.
   */
  committed(): Promise<void> {
    if (!this.held) return Promise.resolve();
    if (!this.outcome) {
      let settle!: (err?: unknown) => void;
      const promise = new Promise<void>((resolve, reject) => (settle = (err) => (err === undefined ? resolve() : reject(err))));
      this.outcome = { promise, settle };
    }
    return this.outcome.promise;
  }

  private later(emit: () => void): void {
    if (this.held) this.held.push(emit);
    else emit();
  }

  /**
   * Moves a VM to another state, records why, and tells clients: the row and the event in one
   * commit. Returns the VM's record after the change.
   */
  transition(rec: VmRecord, to: VmState, reason: string | null, message: string, extras: TransitionExtras = {}): VmRecord {
    if (rec.state !== to && !canTransition(rec.state, to)) throw new Error(`internal: ${rec.name} cannot go from ${rec.state} to ${to}`);
    return this.atomically(() => {
      this.vms.setRuntime(rec.id, { ...extras.patch, state: to }, this.clock.now());
      this.add(rec, 'state', rec.state, to, reason, message, extras.report ?? null);
      return this.changed(rec.id)!;
    });
  }

  /** A state-keeping note in the VM's timeline (e.g. "Restart in 2 s"). */
  note(rec: VmRecord, message: string, reason: string | null = null): void {
    this.add(rec, 'state', rec.state, rec.state, reason, message);
  }

  created(rec: Named, message: string): void {
    this.add(rec, 'created', null, null, null, message);
  }

  updated(rec: Named, message: string): void {
    this.add(rec, 'updated', null, null, null, message);
  }

  error(rec: Named, message: string): void {
    this.add(rec, 'error', null, null, null, message);
  }

  /** Something the host did or saw that is not a state change (reattached, a warning). */
  host(rec: Named, message: string, state: VmState | null = null): void {
    this.add(rec, 'host', state, state, null, message);
  }

  deleted(rec: VmRecord, message: string): void {
    this.add(rec, 'deleted', rec.state, null, null, message);
    this.later(() => this.emit('removed', { id: rec.id, name: rec.name }));
  }

  notify(rec: Named, level: Notification['level'], title: string, body: string): void {
    this.later(() => this.emit('notify', { vmId: rec.id, vmName: rec.name, level, title, body }));
  }

  /** Pushes the VM's current view to clients (as it is now, even if sent after a commit); returns its record. */
  changed(id: string): VmRecord | undefined {
    const rec = this.vms.get(id);
    if (rec) {
      const info = this.describe(rec);
      this.later(() => this.emit('changed', info));
    }
    return rec;
  }

  private add(
    rec: Named,
    kind: EventRecord['kind'],
    from: string | null,
    to: string | null,
    reason: string | null,
    message: string,
    report: CrashReport | null = null,
  ): void {
    const ev = this.events.add({ vmId: rec.id, vmName: rec.name, at: this.clock.now(), kind, from, to, reason, message, report });
    this.later(() => this.emit('logged', ev));
  }
}
