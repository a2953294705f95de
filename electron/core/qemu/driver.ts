// The seam between the supervisor and QEMU processes. The supervisor asks a driver to launch,
// find, attach to and signal a VM's QEMU; it never spawns, reads pidfiles or opens sockets
// itself. The real driver (qemu-driver.ts) runs QEMU; the fake one in the tests simulates it in
// memory, so crash → backoff → restart, hangs and reattaches are tested without QEMU.
import type { Nic, NicKind, VmConfig } from '../api/contract.js';
import type { SerialLink } from './serial-link.js';
import type { QemuCommands } from './commands.js';
import type { QmpEvent } from './qmp.js';

export interface ExitFacts {
  /** Known only when this host is QEMU's parent. */
  code: number | null;
  signal: string | null;
}

/** One running QEMU, launched by this host or attached to after a host restart. */
export interface Machine {
  readonly pid: number;
  /** The process's start time, with the pid its identity across host restarts. */
  readonly pidStart: string | null;
  /** Where this run's output begins in QEMU's log (its lines go into crash reports). */
  readonly logStart: number;
  /** Every QMP command Corral sends goes through here. */
  readonly qmp: QemuCommands;
  /** The host's link to the guest's serial port (null where the driver has none). */
  readonly serial: SerialLink | null;
  /** Resolves once the process is gone. */
  readonly exited: Promise<ExitFacts>;
  onEvent(fn: (ev: QmpEvent) => void): void;
  /**
   * Called once if the VM's swtpm ends while QEMU runs: the guest lost its TPM, a failure of
   * the VM (the supervisor ends QEMU and lets the restart policy decide).
   */
  onTpmFailed(fn: (why: string) => void): void;
  /** Called once if a shared folder's virtiofsd ends while QEMU runs (the guest lost the folder): a failure too. */
  onShareFailed(fn: (why: string) => void): void;
  /** Called with what happened to a NIC's helper (a passt that ended, put back or not): an event. */
  onNetworkNote?(fn: (message: string, recovered: boolean) => void): void;
  /** Replaces a passt NIC's passt with one for these settings (its forwards changed live). */
  restartPasst?(nic: Nic): Promise<void>;
  /** Sends a signal to the QEMU process (gone already: nothing happens). */
  signal(sig: NodeJS.Signals): void;
  /** Stops watching (the host is leaving; QEMU goes on). */
  detach(): void;
}

export interface LaunchSpec {
  id: string;
  name: string;
  config: VmConfig;
  /** The target of a live migration: QEMU starts with `-incoming defer` and waits for the stream. */
  incoming?: boolean;
  /** Called once the process exists, before launch() resolves (QEMU is still setting up). */
  onSpawn?: (pid: number, pidStart: string | null) => void;
}

/** What a crash report needs from the files a run left. */
export interface CrashLogs {
  serialTail: Buffer;
  /** QEMU's own output since the run began. */
  qemuLog: Buffer;
}

export interface QemuDriver {
  /** The machine type a new VM is pinned to: this QEMU's q35, by its full name (pc-q35-7.2). */
  pinnedMachineType(): string;
  /** The kind of NIC a VM made without a NIC list gets: passt where it is installed, else user. */
  defaultNicKind(): NicKind;
  /**
   * Why this host cannot run a VM with this config (machine type, CPU model, firmware, NICs'
   * bridges and passt), or null: asked before a VM moves here, so a move is refused up front.
   */
  problemFor(config: VmConfig): string | null;
  /** Starts QEMU held at -S, with QMP and the serial link connected; `cont` runs the guest. */
  launch(spec: LaunchSpec): Promise<Machine>;
  /** The pid of a QEMU of this VM that is still alive (checked by process identity), or null. */
  findRunning(vmId: string, pid: number | null, pidStart: string | null): number | null;
  /**
   * Connects to a QEMU an earlier host left running; fails when it does not answer. `config`:
   * what it runs with (the helpers beside it, such as passt, are found again from it).
   */
  attach(vmId: string, pid: number, pidStart: string | null, config?: VmConfig): Promise<Machine>;
  /** Signals a QEMU known only by pid (one that could not be attached). */
  kill(pid: number): void;
  /** Removes what a dead QEMU left behind (sockets, pidfile, a swtpm without its QEMU). */
  cleanup(vmId: string): void;
  /** The tails of the serial log and QEMU's log, for a crash report. */
  crashLogs(vmId: string, logStart: number): CrashLogs;
  /** Where the VM's graphical console listens while it runs (null: none). */
  displaySocket(vmId: string): string | null;
  /**
   * A fresh directory that QEMU (whatever user it runs as) may write one file into, and no
   * one else may enter: for screenshots. Remove it when done.
   */
  scratchDir(): { dir: string; remove(): void };
  /** The VM is deleted: removes its run dir with whatever is left in it. */
  forget(vmId: string): void;
}
