// What happens to VMs, told once: state transitions (checked against the state machine) and
// other events are written to the event log and pushed to clients; notifications go to the
// desktop or the browser. Every module that changes a VM reports through here.
import { EventEmitter } from 'node:events';
import type { CrashReport, EventRecord, VmInfo, VmState } from '../api/contract.js';
import type { Clock } from '../clock.js';
import type { EventRepo } from '../store/event-repo.js';
import type { VmRecord, VmRepo } from '../store/vm-repo.js';
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

  /** Moves a VM to another state, records why, and tells clients. */
  transition(rec: VmRecord, to: VmState, reason: string | null, message: string, report: CrashReport | null = null): void {
    if (rec.state !== to && !canTransition(rec.state, to)) throw new Error(`internal: ${rec.name} cannot go from ${rec.state} to ${to}`);
    this.vms.setRuntime(rec.id, { state: to }, this.clock.now());
    this.add(rec, 'state', rec.state, to, reason, message, report);
    this.changed(rec.id);
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
    this.emit('removed', { id: rec.id, name: rec.name });
  }

  notify(rec: Named, level: Notification['level'], title: string, body: string): void {
    this.emit('notify', { vmId: rec.id, vmName: rec.name, level, title, body });
  }

  /** Pushes the VM's current view to clients. */
  changed(id: string): void {
    const rec = this.vms.get(id);
    if (rec) this.emit('changed', this.describe(rec));
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
    this.emit('logged', ev);
  }
}
