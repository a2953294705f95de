// A VM's TPM 2.0: swtpm, started before QEMU and detached like it (a host restart leaves both
// running), its state in the VM's folder (a snapshot or an export takes it with the disks),
// its control socket in the VM's private run dir. swtpm drops to QEMU's user before it opens
// anything, and that user may enter neither the run dir nor the VM's folder: the host binds
// the socket itself and hands swtpm the listening fd (QEMU connects as root, before it drops),
// and starts swtpm inside its state dir, which it then names ".".
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import type { VmFiles } from '../paths.js';
import { ensurePrivateDir } from '../private-files.js';
import { isAlive, processArgv, processStartTime, readPidFile } from './proc.js';
import type { QemuUser } from './run-as.js';

const run = promisify(execFile);

export interface SwtpmBinaries {
  swtpm: string;
  setup: string;
}

export function swtpmBinaries(env: NodeJS.ProcessEnv = process.env): SwtpmBinaries {
  return { swtpm: env.CORRAL_SWTPM ?? 'swtpm', setup: env.CORRAL_SWTPM_SETUP ?? 'swtpm_setup' };
}

/** The identity of a running swtpm: pid and start time, as for QEMU. */
export interface SwtpmProcess {
  pid: number;
  pidStart: string | null;
}

// the working dir is kept across the drop: no path through private folders is walked
const STATE_ARG = 'dir=.,mode=0600';

/** Manufactures the TPM (EK, certificates) the first time; its state then lives with the VM. */
export async function ensureTpmState(files: VmFiles, user: QemuUser | null, bin = swtpmBinaries()): Promise<void> {
  const permall = path.join(files.tpmState, 'tpm2-00.permall');
  if (!fs.existsSync(permall)) {
    fs.rmSync(files.tpmState, { recursive: true, force: true });
    fs.mkdirSync(files.tpmState, { mode: 0o700 });
    try {
      // the system's certificate authority is root's: a user gets one of their own (in their
      // XDG config dir, as libvirt's session mode does), or the EK certificate cannot be made
      if (process.getuid?.() !== 0) await run(bin.setup, ['--create-config-files', 'skip-if-exist'], { timeout: 60_000 });
      await run(
        bin.setup,
        [
          '--tpm2',
          '--tpmstate',
          files.tpmState,
          '--createek',
          '--create-ek-cert',
          '--create-platform-cert',
          '--lock-nvram',
          '--not-overwrite',
        ],
        { timeout: 120_000 },
      );
      if (!fs.existsSync(permall)) throw Object.assign(new Error('swtpm_setup made no TPM state'), { stderr: '' });
    } catch (err) {
      fs.rmSync(files.tpmState, { recursive: true, force: true });
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === 'ENOENT')
        throw new Error('swtpm is not installed: install it for a TPM (Debian/Ubuntu: sudo apt install swtpm swtpm-tools)');
      throw new Error(`could not create the TPM's state: ${(e.stderr ?? '').trim().split('\n').slice(-2).join('; ') || e.message}`);
    }
  }
  // swtpm runs as QEMU's user and writes its state as that user
  if (user)
    for (const f of [files.tpmState, ...fs.readdirSync(files.tpmState).map((n) => path.join(files.tpmState, n))])
      fs.chownSync(f, user.uid, user.gid);
}

/** Starts swtpm for a VM, its control socket listening before this returns. */
export async function startSwtpm(files: VmFiles, user: QemuUser | null, bin = swtpmBinaries()): Promise<SwtpmProcess> {
  ensurePrivateDir(files.runDir);
  stopSwtpm(files);
  // bound under a temporary name: closing the host's handle unlinks that name, not the socket
  const temp = `${files.swtpmSocket}.new`;
  fs.rmSync(temp, { force: true });
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(temp, resolve);
  });
  const logFd = fs.openSync(files.swtpmLog, 'a', 0o600);
  try {
    fs.chmodSync(temp, 0o600);
    fs.renameSync(temp, files.swtpmSocket);
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    const args = ['socket', '--tpm2', '--tpmstate', STATE_ARG, '--ctrl', 'type=unixio,fd=3', '--log', 'fd=4,level=1', '--terminate'];
    if (user) args.push('--runas', user.name);
    const child = spawn(bin.swtpm, args, { cwd: files.tpmState, detached: true, stdio: ['ignore', logFd, logFd, fd, logFd] });
    child.unref();
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', (err) =>
        reject(
          (err as NodeJS.ErrnoException).code === 'ENOENT'
            ? new Error('swtpm is not installed: install it for a TPM (Debian/Ubuntu: sudo apt install swtpm swtpm-tools)')
            : err,
        ),
      );
      child.once('spawn', () => resolve(child.pid!));
    });
    const proc = { pid, pidStart: processStartTime(pid) };
    fs.writeFileSync(files.swtpmPidFile, `${pid}\n`, { mode: 0o600 });
    return proc;
  } finally {
    fs.closeSync(logFd);
    server.close();
  }
}

/** The VM's swtpm if it still runs (pidfile and process identity), or null. */
export function findSwtpm(files: VmFiles): SwtpmProcess | null {
  const pid = readPidFile(files.swtpmPidFile);
  if (!pid || !isOurSwtpm(pid, files)) return null;
  return { pid, pidStart: processStartTime(pid) };
}

function isOurSwtpm(pid: number, files: VmFiles, pidStart?: string | null): boolean {
  const now = processStartTime(pid);
  if (!now || (pidStart && now !== pidStart)) return false;
  const argv = processArgv(pid);
  if (!argv?.includes(STATE_ARG)) return false;
  try {
    return fs.readlinkSync(`/proc/${pid}/cwd`) === path.resolve(files.tpmState);
  } catch {
    return false;
  }
}

/** True while this very swtpm runs (a reused pid is another process). */
export function swtpmAlive(p: SwtpmProcess, files: VmFiles): boolean {
  return isAlive(p.pid) && isOurSwtpm(p.pid, files, p.pidStart);
}

/** Ends a swtpm left behind and removes its socket and pidfile. */
export function stopSwtpm(files: VmFiles): void {
  const left = findSwtpm(files);
  if (left) {
    try {
      process.kill(left.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  for (const f of [files.swtpmSocket, files.swtpmPidFile]) fs.rmSync(f, { force: true });
}

/** Whether the VM's folder holds a TPM state (so its run had a swtpm). */
export function hasTpmState(files: VmFiles): boolean {
  return fs.existsSync(files.tpmState);
}

/** How often a running swtpm is checked (it is not always this host's child). */
const WATCH_MS = 500;

/** Calls `onEnd` once when this swtpm is gone; returns a function that stops watching. */
export function watchSwtpm(p: SwtpmProcess, files: VmFiles, onEnd: () => void): () => void {
  const timer = setInterval(() => {
    if (swtpmAlive(p, files)) return;
    clearInterval(timer);
    onEnd();
  }, WATCH_MS);
  timer.unref();
  return () => clearInterval(timer);
}
