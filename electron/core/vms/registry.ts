// The VMs that have a QEMU right now, and what the supervisor knows about each run. Consoles
// and resources read running VMs from here; only the supervisor adds and removes them.
import { EventEmitter } from 'node:events';
import type { SerialLink } from '../qemu/serial-link.js';
import type { Machine } from '../qemu/driver.js';
import type { QmpEvent } from '../qemu/qmp.js';
import type { HealthWatch } from '../supervisor/health.js';
import type { Requested } from '../supervisor/state.js';

/** One run of a VM's QEMU, as the supervisor sees it. */
export class RunningVm {
  /** What the host asked for before the end, if anything. */
  requested: Requested = null;
  shutdown: { guest: boolean; reason: string } | null = null;
  panicked = false;
  watchdog = false;
  hung: 'qemu-hung' | 'guest-hung' | null = null;
  hungWhy = '';
  /** Why its swtpm failed (QEMU was killed for it), or null. */
  tpmFailed: string | null = null;
  /** Why a shared folder's virtiofsd failed (QEMU was killed for it), or null. */
  shareFailed: string | null = null;
  /** A pause or resume the user asked for is under way: QEMU's STOP/RESUME event is its echo. */
  userTransition: 'paused' | 'running' | null = null;
  /**
   * A snapshot job is under way: QEMU's STOP and RESUME are its own (the state stays), and QMP
   * may not answer until it ends (no hang is declared meanwhile). It sees every QMP event.
   */
  job: { onEvent(ev: QmpEvent): void } | null = null;
  /** A stop that had to be forced because the guest ignored the power button. */
  forced = false;
  /** Recent QMP events, kept for crash reports. */
  readonly recentEvents: QmpEvent[] = [];
  health: HealthWatch | null = null;
  /** Settles once the supervisor has handled the end of this run. */
  ended: Promise<void> = Promise.resolve();
  /** Resolves when the liveness probe first answers (autostart waits for it before the next group). */
  readonly answered: Promise<void>;
  markAnswered: () => void = () => undefined;

  constructor(
    readonly vmId: string,
    readonly machine: Machine,
  ) {
    this.answered = new Promise((resolve) => (this.markAnswered = resolve));
  }
}

export interface RegistryEvents {
  serialData: [string, Buffer, number];
  serialClosed: [string];
}

export class Registry extends EventEmitter<RegistryEvents> {
  private readonly runs = new Map<string, RunningVm>();

  get(vmId: string): RunningVm | undefined {
    return this.runs.get(vmId);
  }

  has(vmId: string): boolean {
    return this.runs.has(vmId);
  }

  /** True while `run` is the VM's current run (an old run's late events are ignored). */
  isCurrent(run: RunningVm): boolean {
    return this.runs.get(run.vmId) === run;
  }

  add(run: RunningVm): void {
    this.runs.set(run.vmId, run);
    const link = run.machine.serial;
    if (link) {
      link.subscribe((data, offset) => this.emit('serialData', run.vmId, data, offset));
      link.onClose(() => this.emit('serialClosed', run.vmId));
    }
  }

  remove(run: RunningVm): void {
    if (this.isCurrent(run)) this.runs.delete(run.vmId);
  }

  all(): RunningVm[] {
    return [...this.runs.values()];
  }

  get size(): number {
    return this.runs.size;
  }

  clear(): void {
    this.runs.clear();
  }

  /** The serial link of a running VM, if it has one. */
  serialLinkOf(vmId: string): SerialLink | null {
    return this.runs.get(vmId)?.machine.serial ?? null;
  }
}
