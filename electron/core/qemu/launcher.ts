// Starts QEMU detached in its own session (a host restart must not take guests with it),
// with -S, and returns once QMP's socket is connected (the negotiation follows: see
// QmpClient.open). Also reattaches to a QEMU a previous host left.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { VmFiles } from '../paths.js';
import { checkSharedBase, ensurePrivateDir, tightenFile, withPrivateUmask } from '../private-files.js';
import { isAlive, processStartTime } from './proc.js';
import { QmpClient } from './qmp.js';

export interface ExitFacts {
  /** Known only when this host is QEMU's parent. */
  code: number | null;
  signal: string | null;
}

export interface QemuProcess {
  pid: number;
  pidStart: string | null;
  qmp: QmpClient;
  /** Resolves once the process is gone. */
  exited: Promise<ExitFacts>;
  /** Size of qemu.log when this run began (its messages follow). */
  logStart: number;
  child: ChildProcess | null;
  /** Stops watching for the exit (the host is leaving; QEMU goes on). */
  detach(): void;
}

export interface LaunchOptions {
  timeoutMs?: number;
  /** Called as soon as the process exists, while QEMU is still setting up (its pid may be recorded then). */
  onSpawn?: (pid: number, pidStart: string | null) => void;
  /** Open fds QEMU inherits as 3, 4… (the sockets it listens on for the NICs' passts). */
  fds?: number[];
}

/** Removes sockets and the pidfile a dead QEMU left behind. */
export function cleanRunDir(files: VmFiles): void {
  for (const f of [files.qmpSocket, files.serialSocket, files.vncSocket, files.qgaSocket, files.pidFile]) fs.rmSync(f, { force: true });
}

const LOG_ROTATE_BYTES = 16 * 1024 * 1024;
/** The safety net under the run dir's watch while waiting for QMP's socket. */
const SOCKET_POLL_MS = 25;

/** Keeps one previous generation of a log that grew past 16 MiB (a chatty guest must not fill the disk). */
function rotate(file: string): void {
  try {
    if (fs.statSync(file).size > LOG_ROTATE_BYTES) fs.renameSync(file, `${file}.1`);
  } catch {
    // no log yet
  }
}

export async function launchQemu(binary: string, argv: string[], files: VmFiles, opts: LaunchOptions = {}): Promise<QemuProcess> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  if (files.sharedBase) checkSharedBase(files.sharedBase);
  ensurePrivateDir(files.runDir, files.runBase);
  fs.mkdirSync(files.dir, { recursive: true, mode: 0o700 });
  cleanRunDir(files);
  rotate(files.serialLog);
  rotate(files.qemuLog);
  tightenFile(files.serialLog);
  tightenFile(files.qemuLog);
  const logFd = fs.openSync(files.qemuLog, 'a', 0o600);
  const logStart = fs.fstatSync(logFd).size;
  let child: ChildProcess;
  try {
    // QEMU creates its sockets, pidfile and serial log under the umask it inherits
    child = withPrivateUmask(() => spawn(binary, argv, { detached: true, stdio: ['ignore', logFd, logFd, ...(opts.fds ?? [])] }));
  } finally {
    fs.closeSync(logFd);
  }
  child.unref();
  let done: ExitFacts | null = null;
  const exited = new Promise<ExitFacts>((resolve) => {
    child.once('exit', (code, signal) => resolve((done = { code, signal })));
    child.once('error', (err) => {
      fs.appendFileSync(files.qemuLog, `corral: could not run ${binary}: ${err.message}\n`);
      resolve((done = { code: 127, signal: null }));
    });
  });
  const pid = child.pid;
  const pidStart = pid ? processStartTime(pid) : null;
  if (pid) {
    try {
      opts.onSpawn?.(pid, pidStart);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }

  // QMP's socket appears a while after the spawn (QEMU links and sets itself up first). The run
  // dir's watch wakes the wait the moment it is created; polling every 2 ms instead took CPU
  // from QEMU's own setup. A slow poll remains in case the watch is unavailable or misses it.
  const socketName = path.basename(files.qmpSocket);
  let created = false;
  let wake: (() => void) | null = null;
  let watcher: fs.FSWatcher | null = null;
  try {
    watcher = fs.watch(files.runDir, (_event, name) => {
      if (name !== socketName) return;
      created = true;
      wake?.();
    });
    watcher.on('error', () => undefined);
  } catch {
    watcher = null;
  }
  void exited.then(() => wake?.());
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (done) throw new Error(`QEMU failed to start: ${logTail(files.qemuLog, logStart) || `exit ${JSON.stringify(done)}`}`);
      let refused = false;
      try {
        const qmp = await QmpClient.open(files.qmpSocket, Math.max(1000, deadline - Date.now()));
        return { pid: pid!, pidStart, qmp, exited, child, logStart, detach: () => qmp.close() };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ECONNREFUSED') {
          child.kill('SIGKILL');
          throw err;
        }
        refused = code === 'ECONNREFUSED'; // bound, not listening yet: a moment more
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`QEMU did not open its QMP socket within ${timeoutMs} ms`);
      }
      if (created && !refused) {
        created = false; // created while that attempt was under way
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, watcher && !refused ? SOCKET_POLL_MS : 2);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  } finally {
    watcher?.close();
  }
}

/**
 * Why a launch failed, once the process is gone: QEMU's own words when it exited by itself
 * (it reports a bad argument or an unreadable file on its log, then closes QMP), `err` otherwise.
 */
export async function launchFailure(proc: QemuProcess, err: Error, files: VmFiles): Promise<Error> {
  const facts = await proc.exited;
  if (facts.signal !== 'SIGKILL') {
    const said = logTail(files.qemuLog, proc.logStart);
    return new Error(`QEMU failed to start: ${said || `exit ${JSON.stringify(facts)}`}`);
  }
  return err;
}

/** Connects to a QEMU started by an earlier host. Exit status is unknowable for a non-child. */
export async function attachQemu(pid: number, pidStart: string | null, files: VmFiles, timeoutMs = 2000): Promise<QemuProcess> {
  const qmp = await QmpClient.connect(files.qmpSocket, timeoutMs);
  let detached = false;
  const exited = new Promise<ExitFacts>((resolve) => {
    const gone = async () => {
      // QMP closes a moment before the process is reaped
      while (isAlive(pid) && processStartTime(pid) !== null) {
        if (detached) return;
        await sleep(5, undefined, { ref: false });
      }
      resolve({ code: null, signal: null });
    };
    if (qmp.closed) void gone();
    else qmp.once('close', () => void gone());
  });
  const detach = () => {
    detached = true;
    qmp.close();
  };
  return { pid, pidStart, qmp, exited, child: null, logStart: 0, detach };
}

/** The new lines QEMU wrote to its log since `from` (its error message when it fails to start). */
export function logTail(file: string, from = 0, max = 2000): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const start = Math.max(from, size - max);
      const buf = Buffer.alloc(size - start);
      fs.readSync(fd, buf, 0, buf.length, start);
      return buf
        .toString('utf8')
        .split('\n')
        .map((l) => l.replace(/^[\d-]+T[\d:.]+Z? ?/, '').trim())
        .filter(Boolean)
        .join('; ');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}
