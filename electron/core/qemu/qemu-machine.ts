// One running QEMU as the supervisor sees it (the driver's Machine): its QMP commands and
// events, its serial link, and the helpers that live beside it (swtpm, virtiofsd, passt),
// watched so that one gone while QEMU runs is reported as the VM's failure or a network note.
import type { Nic } from '../api/contract.js';
import type { vmFiles } from '../paths.js';
import { QemuCommands } from './commands.js';
import type { ExitFacts, Machine } from './driver.js';
import { nicDevice } from './ids.js';
import type { QemuProcess } from './launcher.js';
import type { PasstProcess } from './passt.js';
import { PasstKeeper, type PasstKeeperOptions } from './passt-keeper.js';
import { processStartTime } from './proc.js';
import type { QmpEvent } from './qmp.js';
import type { SerialLink } from './serial-link.js';
import { watchSwtpm, type SwtpmProcess } from './tpm.js';
import { watchVirtiofsd, type VirtiofsdProcess } from './virtiofsd.js';

/** swtpm --terminate follows its QEMU out within this; a swtpm gone while QEMU lives longer failed. */
const TPM_GRACE_MS = 300;

export class QemuMachine implements Machine {
  readonly qmp: QemuCommands;
  /** The host let go of it: what happens to the process later is another host's business. */
  detached = false;
  private tpmFailure: string | null = null;
  private readonly tpmListeners: Array<(why: string) => void> = [];
  private stopTpmWatch: () => void = () => undefined;
  private shareFailure: string | null = null;
  private readonly shareListeners: Array<(why: string) => void> = [];
  private readonly shareWatches: Array<() => void> = [];
  private readonly notes: Array<{ message: string; recovered: boolean }> = [];
  private readonly noteListeners: Array<(message: string, recovered: boolean) => void> = [];
  private passtKeeper: PasstKeeper | null = null;

  constructor(
    private readonly proc: QemuProcess,
    readonly serial: SerialLink | null,
    tpm: { swtpm: SwtpmProcess | null; files: ReturnType<typeof vmFiles> } | null,
    shares: { running: Array<{ tag: string; proc: VirtiofsdProcess | null }>; files: ReturnType<typeof vmFiles> } | null = null,
    passt:
      | (Omit<PasstKeeperOptions, 'live' | 'note' | 'announce'> & { procs: Array<{ nicId: string; proc: PasstProcess | null }> })
      | null = null,
  ) {
    this.qmp = new QemuCommands(proc.qmp);
    for (const fsd of shares?.running ?? []) {
      if (!fsd.proc) {
        this.failShare(`virtiofsd of shared folder "${fsd.tag}" was gone when Corral reattached to QEMU`);
        continue;
      }
      const { pid } = fsd.proc;
      this.shareWatches.push(
        watchVirtiofsd(fsd.proc, shares!.files, () => {
          // virtiofsd ends when QEMU goes: only one gone while QEMU lives is a failure
          setTimeout(() => {
            if (!this.detached && processStartTime(this.proc.pid) !== null)
              this.failShare(`virtiofsd (pid ${pid}) of shared folder "${fsd.tag}" ended while QEMU ran`);
          }, TPM_GRACE_MS).unref();
        }),
      );
    }
    if (passt) {
      this.passtKeeper = new PasstKeeper({
        ...passt,
        live: () => !this.detached && processStartTime(this.proc.pid) !== null,
        note: (message, recovered) => this.note(message, recovered),
        announce: (nicId) => this.qmp.announceNics([nicDevice(nicId)]),
      });
      this.passtKeeper.watch(passt.procs);
    }
    if (!tpm) return;
    if (!tpm.swtpm) this.failTpm('swtpm was gone when Corral reattached to QEMU');
    else {
      const { pid } = tpm.swtpm;
      this.stopTpmWatch = watchSwtpm(tpm.swtpm, tpm.files, () => {
        // swtpm ends with QEMU (--terminate): only a swtpm gone while QEMU lives is a failure
        setTimeout(() => {
          if (!this.detached && processStartTime(this.proc.pid) !== null) this.failTpm(`swtpm (pid ${pid}) ended while QEMU ran`);
        }, TPM_GRACE_MS).unref();
      });
    }
  }

  /** Puts a new passt with these settings on a passt NIC (its forwards changed). */
  restartPasst(nic: Nic): Promise<void> {
    if (!this.passtKeeper) return Promise.reject(new Error(`${nic.id} has no passt in this run`));
    return this.passtKeeper.restartWith(nic);
  }

  private note(message: string, recovered: boolean): void {
    this.notes.push({ message, recovered });
    for (const fn of this.noteListeners) fn(message, recovered);
  }

  onNetworkNote(fn: (message: string, recovered: boolean) => void): void {
    this.noteListeners.push(fn);
    for (const n of this.notes) fn(n.message, n.recovered);
  }

  private failTpm(why: string): void {
    if (this.tpmFailure) return;
    this.tpmFailure = why;
    for (const fn of this.tpmListeners) fn(why);
  }

  onTpmFailed(fn: (why: string) => void): void {
    this.tpmListeners.push(fn);
    if (this.tpmFailure) fn(this.tpmFailure);
  }

  private failShare(why: string): void {
    if (this.shareFailure) return;
    this.shareFailure = why;
    for (const fn of this.shareListeners) fn(why);
  }

  onShareFailed(fn: (why: string) => void): void {
    this.shareListeners.push(fn);
    if (this.shareFailure) fn(this.shareFailure);
  }

  private stopWatches(): void {
    this.stopTpmWatch();
    for (const stop of this.shareWatches) stop();
    this.passtKeeper?.stop();
  }

  get pid(): number {
    return this.proc.pid;
  }
  get pidStart(): string | null {
    return this.proc.pidStart;
  }
  get logStart(): number {
    return this.proc.logStart;
  }
  get exited(): Promise<ExitFacts> {
    return this.proc.exited;
  }

  onEvent(fn: (ev: QmpEvent) => void): void {
    this.proc.qmp.on('event', fn);
  }

  signal(sig: NodeJS.Signals): void {
    if (this.proc.child) this.proc.child.kill(sig);
    else signalPid(this.proc.pid, sig);
  }

  detach(): void {
    this.detached = true;
    this.stopWatches();
    this.proc.detach();
    this.serial?.close();
  }

  /** After the process is gone: closes what is still open. */
  release(): void {
    this.stopWatches();
    this.proc.qmp.close();
    this.serial?.close();
  }
}

export function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
