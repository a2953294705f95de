// The host's side of the fencer: start it (detached, once per data dir) or find the one a
// previous host left, then tell it each new deadline and the HA QEMUs to guard.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensurePrivateDir } from '../../private-files';
import { isSameProcess, readPidFile } from '../../qemu/proc';
import { fencerFiles, type FenceRecord, type FencerFiles, type FencerMessage, type Guard } from './protocol';

/** The compiled entry point beside this file. */
export const FENCER_MAIN = path.join(__dirname, 'main.js');

export interface FencerOptions {
  /** The fencer's entry point (default: the compiled main.js beside this file). */
  entry?: string;
  /** Node binary to run it with (default: this process's). */
  node?: string;
  /** Arm the Linux watchdog (see watchdog.ts): device and timeout. */
  watchdog?: { device: string; timeoutSec: number };
}

/** The pid of a running fencer for this dir, or null. */
export function findFencer(files: FencerFiles): number | null {
  const pid = readPidFile(files.pidFile);
  return pid && isSameProcess(pid, null, files.pidFile) ? pid : null;
}

/** Starts the fencer of `dir` unless one already runs there; resolves with its pid once it listens. */
export async function ensureFencer(dir: string, opts: FencerOptions = {}): Promise<number> {
  ensurePrivateDir(dir);
  const files = fencerFiles(dir);
  const found = findFencer(files);
  if (found) return found;
  fs.rmSync(files.pidFile, { force: true });
  const argv = [opts.entry ?? FENCER_MAIN, '--dir', dir, '--pidfile', files.pidFile];
  if (opts.watchdog) argv.push('--watchdog', opts.watchdog.device, '--watchdog-sec', String(opts.watchdog.timeoutSec));
  const errFd = fs.openSync(files.log, 'a', 0o600);
  // its own session: a signal to the host's process group (Ctrl-C, a service stop) must not reach it
  const child = spawn(opts.node ?? process.execPath, argv, { detached: true, stdio: ['ignore', errFd, errFd] });
  fs.closeSync(errFd);
  child.unref();
  let exit: number | null = null;
  child.once('exit', (code) => (exit = code ?? -1));
  for (let i = 0; i < 200; i++) {
    if (exit !== null) throw new Error(`the fencer exited at start (status ${exit}); see ${files.log}`);
    const pid = findFencer(files);
    if (pid) return pid;
    await sleep(50);
  }
  throw new Error(`the fencer did not start within 10 s; see ${files.log}`);
}

/** Reads the fence record the fencer left, or null when it has not fenced. */
export function readFenceRecord(dir: string): FenceRecord | null {
  try {
    return JSON.parse(fs.readFileSync(fencerFiles(dir).record, 'utf8')) as FenceRecord;
  } catch {
    return null;
  }
}

/** One connection to the fencer, re-made when it breaks (a restarted fencer). */
export class FencerLink {
  private conn: net.Socket | null = null;
  private readonly files: FencerFiles;

  constructor(dir: string) {
    this.files = fencerFiles(dir);
  }

  arm(deadlineMs: number, guards: Guard[]): void {
    this.send({ op: 'arm', deadlineMs, guards });
  }

  disarm(): void {
    this.send({ op: 'disarm' });
  }

  clearFence(): void {
    this.send({ op: 'clear-fence' });
  }

  close(): void {
    this.conn?.end();
    this.conn = null;
  }

  private send(msg: FencerMessage): void {
    if (!this.conn || this.conn.destroyed) {
      const c = net.createConnection(this.files.socket);
      c.on('error', () => c.destroy());
      c.unref();
      this.conn = c;
    }
    this.conn.write(`${JSON.stringify(msg)}\n`);
  }
}
