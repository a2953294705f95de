// Keeps each passt NIC's passt running while its QEMU runs. A passt that ends (killed, crashed,
// gone when the host reattached) is started again on a new connection to QEMU's socket for the
// NIC (see passt.ts), which QEMU accepts while the guest keeps running. Either way the host says
// so; one that cannot be put back leaves the NIC without network until the next boot.
import type { Nic } from '../api/contract.js';
import type { VmFiles } from '../paths.js';
import { passtAlive, startPasst, type PasstProcess } from './passt.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { QemuUser } from './run-as.js';

const WATCH_MS = 500;
/** passt also ends when QEMU does: only one gone while QEMU still lives after this is news. */
const GRACE_MS = 300;
/** A passt that keeps dying is not put back forever: at most this many times per window. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;

export interface PasstKeeperOptions {
  files: VmFiles;
  nics: readonly Nic[];
  user: QemuUser | null;
  /** Whether QEMU still runs and this host still watches it. */
  live: () => boolean;
  /** An event for the VM's timeline; `recovered` when a new passt took the NIC over. */
  note: (message: string, recovered: boolean) => void;
  /**
   * Makes QEMU announce the NIC to its new passt. passt learns the guest's MAC only from a frame
   * the guest sends; an idle guest sends none, and until then forwarded connections go unanswered.
   */
  announce?: (nicId: string) => Promise<void>;
  start?: typeof startPasst;
}

export class PasstKeeper {
  private readonly watched = new Map<string, PasstProcess>();
  /** Each passt NIC as its passt runs now (its forwards change live). */
  private readonly nics: Map<string, Nic>;
  private readonly restarts = new Map<string, number[]>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly o: PasstKeeperOptions) {
    this.nics = new Map(o.nics.filter((n) => n.kind === 'passt').map((n) => [n.id, n]));
  }

  /**
   * Replaces the NIC's passt with one for these settings (new forwards): the old one ends
   * first, so that the ports both forward are free. If the new one refuses (a port in use), the
   * old settings are put back and the refusal is thrown.
   */
  async restartWith(nic: Nic): Promise<void> {
    const before = this.nics.get(nic.id);
    if (!before) throw new Error(`${nic.id} is not a passt NIC of this run`);
    const old = this.watched.get(nic.id);
    this.watched.delete(nic.id);
    if (old) await endPasst(old, this.o.files);
    try {
      await this.take(nic);
      this.nics.set(nic.id, nic);
    } catch (err) {
      await this.take(before).catch((again: Error) =>
        this.o.note(
          `passt for ${nic.id} could not be put back either (${again.message}): that NIC has no network until the VM restarts`,
          false,
        ),
      );
      throw err;
    }
  }

  /** Starts a passt for the NIC, watches it and has QEMU announce the NIC to it. */
  private async take(nic: Nic): Promise<PasstProcess> {
    const p = await (this.o.start ?? startPasst)(this.o.files, nic, this.o.user);
    this.watched.set(nic.id, p);
    this.arm();
    await this.o.announce?.(nic.id).catch(() => undefined);
    return p;
  }

  /** Watches the NICs' passts; a NIC whose passt is already gone (null) gets a new one at once. */
  watch(procs: ReadonlyArray<{ nicId: string; proc: PasstProcess | null }>): void {
    for (const { nicId, proc } of procs) {
      if (proc) this.watched.set(nicId, proc);
      else void this.replace(nicId, 'was gone when Corral reattached');
    }
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private arm(): void {
    if (this.timer || this.stopped || !this.watched.size) return;
    this.timer = setInterval(() => this.check(), WATCH_MS);
    this.timer.unref();
  }

  private check(): void {
    for (const [nicId, p] of this.watched) {
      if (passtAlive(p, this.o.files)) continue;
      this.watched.delete(nicId);
      setTimeout(() => {
        if (!this.stopped && this.o.live()) void this.replace(nicId, `(pid ${p.pid}) ended while the guest ran`);
      }, GRACE_MS).unref();
    }
  }

  private async replace(nicId: string, what: string): Promise<void> {
    const lost = `passt for ${nicId} ${what}`;
    const nic = this.nics.get(nicId);
    const now = Date.now();
    const recent = (this.restarts.get(nicId) ?? []).filter((t) => now - t < RESTART_WINDOW_MS);
    if (!nic || recent.length >= MAX_RESTARTS) {
      const why = nic ? `it ended ${recent.length} times within a minute, so it is not started again` : 'its NIC is unknown';
      this.o.note(`${lost}; ${why}: that NIC has no network until the VM restarts`, false);
      return;
    }
    this.restarts.set(nicId, [...recent, now]);
    try {
      const p = await (this.o.start ?? startPasst)(this.o.files, nic, this.o.user);
      if (this.stopped || !this.o.live()) return;
      this.watched.set(nicId, p);
      this.arm();
      const announced = await this.o.announce?.(nicId).then(
        () => '',
        (err: Error) => ` (announcing the NIC to it failed: ${err.message}; forwards wait for the guest's next packet)`,
      );
      this.o.note(`${lost}; started it again (pid ${p.pid}) on the NIC's socket, where QEMU takes it back${announced ?? ''}`, true);
    } catch (err) {
      if (this.stopped || !this.o.live()) return;
      this.o.note(
        `${lost} and could not be started again (${(err as Error).message}): that NIC has no network until the VM restarts`,
        false,
      );
    }
  }
}

/** Ends a passt and waits until it is gone (its forwarded ports closed with it). */
async function endPasst(p: PasstProcess, files: VmFiles): Promise<void> {
  try {
    process.kill(p.pid, 'SIGKILL');
  } catch {
    return; // gone already
  }
  for (let i = 0; i < 100 && passtAlive(p, files); i++) await sleep(20);
}
