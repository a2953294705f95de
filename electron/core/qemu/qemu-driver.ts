// The real driver: QEMU processes started detached (a host restart must not take guests with
// it), found again by pidfile and process identity, reached over QMP and the serial socket.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { logSize, readTail, SerialLink } from './serial-link.js';
import { vmFiles, type DataLayout } from '../paths.js';
import { buildArgv, type HostCaps } from './argv.js';
import { QemuCommands } from './commands.js';
import type { CrashLogs, LaunchSpec, Machine, QemuDriver } from './driver.js';
import { ensureVarsFile, resolveFirmware } from './firmware.js';
import { hardwareProblem } from './hardware.js';
import { SERIAL_CHARDEV } from './ids.js';
import { attachQemu, cleanRunDir, launchFailure, launchQemu, type QemuProcess } from './launcher.js';
import { QemuMachine, signalPid } from './qemu-machine.js';
import { isSameProcess, readPidFile } from './proc.js';
import type { MachineCatalog } from './probe.js';
import type { QemuUser } from './run-as.js';
import { ensureTpmState, findSwtpm, startSwtpm, stopSwtpm, type SwtpmProcess } from './tpm.js';
import {
  findVirtiofsd,
  virtiofsdIndexes,
  shareMechanism,
  shareSupport,
  startVirtiofsd,
  stopAllVirtiofsd,
  type VirtiofsdProcess,
} from './virtiofsd.js';
import { checkBridges } from './bridge.js';
import { findPasst, hasDefaultRoute, passtInstalled, listenForPasst, startPasst, stopAllPasst, type PasstProcess } from './passt.js';
import type { NicKind, VmConfig } from '../api/contract.js';

const SERIAL_TAIL = 4096;
/** How long QEMU may take to answer its first command. */
const LAUNCH_TIMEOUT_MS = 20_000;
const QEMU_TAIL = 2048;

export interface QemuDriverOptions {
  layout: DataLayout;
  caps: HostCaps & MachineCatalog & { binary: string; version: string };
  /** When the host runs as root: the user QEMU drops to (its name is caps.runAs). */
  qemuUser?: QemuUser | null;
}

export class RealQemuDriver implements QemuDriver {
  constructor(private readonly o: QemuDriverOptions) {}

  private files(vmId: string) {
    return vmFiles(this.o.layout, vmId);
  }

  pinnedMachineType(): string {
    return this.o.caps.q35;
  }

  private passt: boolean | null = null;
  defaultNicKind(): NicKind {
    // passt needs an external interface to mirror: without a default route, slirp it is
    this.passt ??= passtInstalled() && hasDefaultRoute();
    return this.passt ? 'passt' : 'user';
  }

  /** One passt per passt NIC, on QEMU's sockets (QEMU listens on them while held at -S). */
  private async startNetwork(config: VmConfig, files: ReturnType<typeof vmFiles>, user: QemuUser | null): Promise<PasstProcess[]> {
    const started: PasstProcess[] = [];
    for (const nic of config.nics) if (nic.kind === 'passt') started.push(await startPasst(files, nic, user));
    return started;
  }

  problemFor(config: VmConfig): string | null {
    const hw = hardwareProblem(config, this.o.caps);
    if (hw) return hw;
    try {
      resolveFirmware(config.firmware);
      checkBridges(config.nics);
    } catch (err) {
      return (err as Error).message;
    }
    const passt = config.nics.find((n) => n.kind === 'passt');
    return passt && !passtInstalled() ? `${passt.id}: passt is not installed on this host (Debian: sudo apt install passt)` : null;
  }

  async launch(spec: LaunchSpec): Promise<Machine> {
    const files = this.files(spec.id);
    const { onSpawn, ...vm } = spec;
    const { config } = spec;
    const problem = hardwareProblem(config, this.o.caps);
    if (problem) throw new Error(problem);
    const user = this.o.qemuUser ?? null;
    fs.mkdirSync(files.dir, { recursive: true, mode: 0o700 });
    const firmware = resolveFirmware(config.firmware);
    if (firmware) await ensureVarsFile(firmware, files.efiVars);
    // swtpm first: QEMU connects to its socket while it builds the machine
    let swtpm: SwtpmProcess | null = null;
    if (config.tpm) {
      await ensureTpmState(files, user);
      swtpm = await startSwtpm(files, user);
    }
    const shares = await this.startShares(config, files, () => swtpm && stopSwtpm(files));
    const stopHelpers = () => {
      if (swtpm) stopSwtpm(files);
      stopAllVirtiofsd(files);
      stopAllPasst(files);
    };
    try {
      checkBridges(config.nics);
    } catch (err) {
      stopHelpers();
      throw err;
    }
    // QEMU's listening sockets for the passts, bound by the host in its run dir
    const listeners: Array<{ fd: number; close(): void }> = [];
    try {
      for (const nic of config.nics) if (nic.kind === 'passt') listeners.push(await listenForPasst(files, nic.id));
    } catch (err) {
      for (const l of listeners) l.close();
      stopHelpers();
      throw err;
    }
    const passtIds = config.nics.filter((n) => n.kind === 'passt').map((n) => n.id);
    const passtFds = new Map(passtIds.map((id, i) => [id, 3 + i]));
    const argv = buildArgv(
      { ...vm, files, firmware, shareVia: shares.via, passtFds },
      { ...this.o.caps, runAs: user?.name, hostKey: this.o.layout.root },
    );
    let proc: QemuProcess;
    try {
      proc = await launchQemu(this.o.caps.binary, argv, files, { onSpawn, fds: listeners.map((l) => l.fd) });
    } catch (err) {
      stopHelpers();
      throw err;
    } finally {
      // QEMU holds them now; the host keeps none
      for (const l of listeners) l.close();
    }
    // QEMU is still building the machine: the serial link is connected meanwhile, and the
    // question whether QEMU accepted it waits in line behind qmp_capabilities
    const link = new SerialLink(files.serialSocket);
    try {
      await Promise.all([this.linkSerial(proc, link, files.serialLog, LAUNCH_TIMEOUT_MS), proc.qmp.ready]);
      // QEMU answers QMP once its netdevs exist: the passts connect to their sockets now
      const passts = await this.startNetwork(config, files, user);
      const passtWatch = passts.length ? { procs: passts.map((p) => ({ nicId: p.nicId, proc: p })), files, nics: config.nics, user } : null;
      return this.watch(
        new QemuMachine(proc, link, swtpm ? { swtpm, files } : null, { running: shares.running, files }, passtWatch),
        files,
      );
    } catch (err) {
      link.close();
      proc.child?.kill('SIGKILL');
      proc.qmp.close();
      stopHelpers();
      throw await launchFailure(proc, err as Error, files);
    }
  }

  findRunning(vmId: string, pid: number | null, pidStart: string | null): number | null {
    const files = this.files(vmId);
    const candidate = pid ?? readPidFile(files.pidFile);
    return candidate && isSameProcess(candidate, pidStart, files.pidFile) ? candidate : null;
  }

  async attach(vmId: string, pid: number, pidStart: string | null, config?: VmConfig): Promise<Machine> {
    const files = this.files(vmId);
    const proc = await attachQemu(pid, pidStart, files);
    try {
      const qmp = new QemuCommands(proc.qmp);
      // the last host died mid-start: the guest is still held at -S
      if ((await qmp.queryStatus()).status === 'prelaunch') await qmp.cont();
      const link = new SerialLink(files.serialSocket);
      await this.linkSerial(proc, link, files.serialLog);
      // a pidfile says this run had a swtpm: it must still be there
      const tpm = fs.existsSync(files.swtpmPidFile) ? { swtpm: findSwtpm(files), files } : null;
      // likewise a share's pidfile says it had a virtiofsd (named by its place in the run's config)
      const running = virtiofsdIndexes(files).map((i) => ({ tag: `#${i}`, proc: findVirtiofsd(files, i, `#${i}`) }));
      // the NICs QEMU runs with: each passt NIC's passt must still be there
      const passtNics = (config?.nics ?? []).filter((n) => n.kind === 'passt');
      const passt = passtNics.length
        ? {
            procs: passtNics.map((n) => ({ nicId: n.id, proc: findPasst(files, n.id) })),
            files,
            nics: passtNics,
            user: this.o.qemuUser ?? null,
          }
        : null;
      return this.watch(new QemuMachine(proc, link, tpm, { running, files }, passt), files);
    } catch (err) {
      proc.detach();
      throw err;
    }
  }

  kill(pid: number): void {
    signalPid(pid, 'SIGKILL');
  }

  cleanup(vmId: string): void {
    cleanRunDir(this.files(vmId));
    stopSwtpm(this.files(vmId));
    stopAllVirtiofsd(this.files(vmId));
    stopAllPasst(this.files(vmId));
  }

  forget(vmId: string): void {
    stopSwtpm(this.files(vmId));
    stopAllVirtiofsd(this.files(vmId));
    stopAllPasst(this.files(vmId));
    fs.rmSync(this.files(vmId).runDir, { recursive: true, force: true });
  }

  crashLogs(vmId: string, logStart: number): CrashLogs {
    const files = this.files(vmId);
    const qemu = readTail(files.qemuLog, QEMU_TAIL);
    return {
      serialTail: readTail(files.serialLog, SERIAL_TAIL).data,
      qemuLog: qemu.data.subarray(Math.max(0, logStart - (qemu.size - qemu.data.length))),
    };
  }

  displaySocket(vmId: string): string | null {
    return this.files(vmId).vncSocket;
  }

  scratchDir(): { dir: string; remove(): void } {
    // QEMU may have dropped to another user, who cannot pass the host's private dirs: a
    // fresh dir in a world-traversable tmpfs, random name, given to that user alone
    const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
    const dir = fs.mkdtempSync(path.join(base, 'corral-screen-'));
    const remove = () => fs.rmSync(dir, { recursive: true, force: true });
    try {
      const u = this.o.qemuUser;
      if (u) fs.chownSync(dir, u.uid, u.gid);
    } catch (err) {
      remove();
      throw err;
    }
    return { dir, remove };
  }

  /** Cleans up after the process once it is gone. */
  private watch(m: QemuMachine, files: ReturnType<typeof vmFiles>): Machine {
    void m.exited.then(() => {
      if (m.detached) return;
      m.release();
      cleanRunDir(files);
      stopSwtpm(files);
      stopAllVirtiofsd(files);
      stopAllPasst(files);
    });
    return m;
  }

  /**
   * Starts a virtiofsd for each share that goes over virtiofs here (9p needs nothing beside
   * QEMU); on failure, ends those already started and calls `undo` for the rest.
   */
  private async startShares(config: VmConfig, files: ReturnType<typeof vmFiles>, undo: () => void) {
    const support = shareSupport();
    const via = config.shares.map((s) => shareMechanism(s.via, support));
    const running: Array<{ tag: string; proc: VirtiofsdProcess | null }> = [];
    try {
      for (const [i, s] of config.shares.entries()) {
        if (via[i] !== 'virtiofs') continue;
        if (!support.virtiofsd) throw new Error(`shared folder "${s.tag}" asks for virtiofs, but ${support.why}; use 9p for it`);
        running.push({ tag: s.tag, proc: await startVirtiofsd(files, i, s, support.virtiofsd) });
      }
    } catch (err) {
      stopAllVirtiofsd(files);
      undo();
      throw err;
    }
    return { via, running };
  }

  /**
   * Connects the host's serial link and places its stream in the log. Until QEMU has accepted
   * the link, output goes to the log only; once it has, the log's size says where the stream
   * starts: exact when the guest is not running yet, as at a start; a byte or two off at a
   * reattach to a guest printing at that very moment.
   */
  private async linkSerial(proc: QemuProcess, link: SerialLink, log: string, firstAnswerMs?: number): Promise<void> {
    try {
      await link.connect();
      const qmp = new QemuCommands(proc.qmp);
      // at a launch, the first answer comes once QEMU has built the machine
      let accepted = await qmp.chardevConnected(SERIAL_CHARDEV, firstAnswerMs);
      const deadline = Date.now() + 5000;
      while (!accepted) {
        if (Date.now() > deadline) throw new Error('QEMU did not accept the serial console link');
        await new Promise((r) => setTimeout(r, 2));
        accepted = await qmp.chardevConnected(SERIAL_CHARDEV);
      }
      link.begin(logSize(log));
    } catch (err) {
      link.close();
      throw err;
    }
  }
}
