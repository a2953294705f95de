// Shared folders over virtiofs: one virtiofsd per share, started before QEMU and detached like
// it (a host restart leaves both running), found again by pidfile and identity, its socket in
// the VM's private run dir. QEMU connects to the socket as root, before it drops to its user;
// virtiofsd stays root inside its own namespaces (pivot_root into the folder), so the guest
// sees the host's owners and modes. It ends by itself when QEMU disconnects.
//
// QEMU 7.2's virtiofsd has no read-only mode: a read-only share runs it in a private mount
// namespace where the folder is bind-mounted read-only over itself, so the kernel refuses the
// guest's writes (EROFS) and nothing on the host changes.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { SharedFolder, ShareVia } from '../api/contract.js';
import type { VmFiles } from '../paths.js';
import { ensurePrivateDir } from '../private-files.js';
import { isAlive, processArgv, processStartTime, readPidFile } from './proc.js';

/** Where distributions put virtiofsd (QEMU 7.2 ships it; later releases use the Rust one). */
const CANDIDATES = ['/usr/lib/qemu/virtiofsd', '/usr/libexec/virtiofsd', '/usr/lib/virtiofsd', '/usr/bin/virtiofsd'];

export interface ShareSupport {
  /** virtiofsd's path when this host can run it, else null. */
  virtiofsd: string | null;
  /** Why virtiofs is unavailable (shares set to auto use 9p then). */
  why: string | null;
}

/** Whether this host can run virtiofsd: it is installed and the host is root (its sandbox needs namespaces). */
export function shareSupport(env: NodeJS.ProcessEnv = process.env): ShareSupport {
  const bin = env.CORRAL_VIRTIOFSD ?? CANDIDATES.find((c) => isExecutable(c));
  if (!bin || !isExecutable(bin))
    return { virtiofsd: null, why: 'virtiofsd is not installed (Debian 12 ships it with qemu-system-x86; later: apt install virtiofsd)' };
  if (process.getuid?.() !== 0)
    return { virtiofsd: null, why: 'virtiofsd needs a host running as root (it sandboxes itself in namespaces)' };
  return { virtiofsd: bin, why: null };
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** How a share reaches the guest on this host. */
export function shareMechanism(via: ShareVia, support: ShareSupport): 'virtiofs' | '9p' {
  if (via === 'auto') return support.virtiofsd ? 'virtiofs' : '9p';
  return via;
}

export const shareSocket = (files: VmFiles, i: number) => path.join(files.runDir, `fs${i}.sock`);
const sharePidFile = (files: VmFiles, i: number) => path.join(files.runDir, `fs${i}.pid`);
const shareLog = (files: VmFiles) => path.join(files.dir, 'virtiofsd.log');

/** The identity of a running virtiofsd: pid and start time, as for QEMU. */
export interface VirtiofsdProcess {
  index: number;
  tag: string;
  pid: number;
  pidStart: string | null;
}

/** How long virtiofsd may take to create its socket (it sets up namespaces first). */
const START_TIMEOUT_MS = 30_000;

// sh's "$1" is the folder, the rest is virtiofsd's command: nothing is parsed by a shell
const READ_ONLY_SCRIPT = 'mount --bind -- "$1" "$1" && mount -o remount,bind,ro -- "$1" "$1" && shift && exec "$@"';

/** Starts virtiofsd for share `i`; resolves once its socket listens. */
export async function startVirtiofsd(files: VmFiles, i: number, share: SharedFolder, bin: string): Promise<VirtiofsdProcess> {
  ensurePrivateDir(files.runDir);
  stopVirtiofsd(files, i);
  const sock = shareSocket(files, i);
  const args = [
    `--socket-path=${sock}`,
    '-o',
    `source=${share.path}`,
    '-o',
    'sandbox=namespace',
    '-o',
    'cache=auto',
    '-o',
    'log_level=warn',
  ];
  const [cmd, argv] = share.readOnly
    ? [
        'unshare',
        ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', READ_ONLY_SCRIPT, 'corral-share', share.path, bin, ...args],
      ]
    : [bin, args];
  const log = shareLog(files);
  const logFd = fs.openSync(log, 'a', 0o600);
  const logStart = fs.fstatSync(logFd).size;
  let exited = false;
  let pid: number;
  try {
    const child = spawn(cmd, argv as string[], { detached: true, stdio: ['ignore', logFd, logFd] });
    child.unref();
    child.once('exit', () => (exited = true));
    pid = await new Promise<number>((resolve, reject) => {
      child.once('error', (err) =>
        reject(new Error(`could not run ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? `${cmd}: not installed` : err.message}`)),
      );
      child.once('spawn', () => resolve(child.pid!));
    });
  } finally {
    fs.closeSync(logFd);
  }
  const proc = { index: i, tag: share.tag, pid, pidStart: processStartTime(pid) };
  fs.writeFileSync(sharePidFile(files, i), `${pid}\n`, { mode: 0o600 });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!fs.existsSync(sock)) {
    if (exited || Date.now() > deadline) {
      stopVirtiofsd(files, i);
      const said = readFrom(log, logStart).trim().split('\n').slice(-3).join('; ');
      throw new Error(
        `virtiofsd for shared folder "${share.tag}" (${share.path}) ${exited ? 'failed' : 'did not start'}: ${said || 'no output'}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return proc;
}

function readFrom(file: string, from: number): string {
  try {
    return fs.readFileSync(file).subarray(from).toString('utf8');
  } catch {
    return '';
  }
}

/** Share `i`'s virtiofsd if it still runs (pidfile and identity), or null. */
export function findVirtiofsd(files: VmFiles, i: number, tag: string): VirtiofsdProcess | null {
  const pid = readPidFile(sharePidFile(files, i));
  if (!pid || !isOurs(pid, files, i)) return null;
  return { index: i, tag, pid, pidStart: processStartTime(pid) };
}

/** The shares that had a virtiofsd in this run (their pidfiles are in the run dir). */
export function virtiofsdIndexes(files: VmFiles): number[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(files.runDir);
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const m = /^fs(\d+)\.pid$/.exec(n);
    return m ? [Number(m[1])] : [];
  });
}

function isOurs(pid: number, files: VmFiles, i: number, pidStart?: string | null): boolean {
  const now = processStartTime(pid);
  if (!now || (pidStart && now !== pidStart)) return false;
  return processArgv(pid)?.includes(`--socket-path=${shareSocket(files, i)}`) ?? false;
}

export function virtiofsdAlive(p: VirtiofsdProcess, files: VmFiles): boolean {
  return isAlive(p.pid) && isOurs(p.pid, files, p.index, p.pidStart);
}

/** Ends share `i`'s virtiofsd if one is left and removes its socket and pidfile. */
export function stopVirtiofsd(files: VmFiles, i: number): void {
  const pid = readPidFile(sharePidFile(files, i));
  if (pid && isOurs(pid, files, i)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  for (const f of [shareSocket(files, i), sharePidFile(files, i)]) fs.rmSync(f, { force: true });
}

/** Ends every virtiofsd of the VM (any share index whose pidfile is in the run dir). */
export function stopAllVirtiofsd(files: VmFiles): void {
  for (const i of virtiofsdIndexes(files)) stopVirtiofsd(files, i);
}

const WATCH_MS = 500;

/** Calls `onEnd` once when this virtiofsd is gone; returns a function that stops watching. */
export function watchVirtiofsd(p: VirtiofsdProcess, files: VmFiles, onEnd: () => void): () => void {
  const timer = setInterval(() => {
    if (virtiofsdAlive(p, files)) return;
    clearInterval(timer);
    onEnd();
  }, WATCH_MS);
  timer.unref();
  return () => clearInterval(timer);
}
