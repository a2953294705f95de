// Shared test helpers: temp data dirs, the guest fixture, waiting for conditions.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The built guest's folder: tests register it as the storage pool "fixtures". */
export const FIXTURE_DIR = path.join(__dirname, 'fixtures', 'out');

export const FIXTURE = {
  kernel: path.join(FIXTURE_DIR, 'vmlinuz'),
  initrd: path.join(FIXTURE_DIR, 'initramfs.cpio.gz'),
  banner: 'CORRAL-GUEST-READY',
  prompt: 'guest# ',
};

export const CLI = path.join(__dirname, '..', 'bin', 'corral');

/**
 * The longest a guest may take to boot to its prompt before a test gives up: under TCG on a
 * loaded 2-core machine a boot has taken over a minute. A guard against hangs, never a target.
 */
export const BOOT_MS = 180_000;

export function tempDir(prefix = 'corral-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 30_000, everyMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

/**
 * Ends every process whose argv names a file under `dataDir`: the guests, and the fencer, that
 * outlive a stopped `corral serve` by design. For a test's afterAll, once its hosts are stopped.
 */
export function endProcessesOf(dataDir: string): void {
  const under = `${fs.realpathSync(dataDir)}/`;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.includes(under))) process.kill(Number(d), 'SIGKILL');
    } catch {
      // raced with an exiting process
    }
  }
}

/** PIDs of QEMU processes whose argv names this pidfile (i.e. belong to one VM). */
export function qemuPidsFor(pidFile: string): number[] {
  const pids: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (argv[0]?.includes('qemu-system') && argv.includes(pidFile)) pids.push(Number(d));
    } catch {
      // raced with an exiting process
    }
  }
  return pids;
}

/**
 * CORRAL_QEMU that puts a tap on the serial socket (see the script): a VM started with it can
 * be flooded with tapFlood, much faster than its emulated UART could print.
 */
export const SERIAL_TAP_QEMU = path.join(__dirname, 'fixtures', 'serial-tap-qemu.sh');

/**
 * Has the tap of a VM's serial socket send `bytes` of 80-column lines at `rate` bytes/s (0: as
 * fast as the host reads), then the line TPUT-<tag>-END. Resolves when all was handed over.
 * `numbered`: each line starts with its number (see floodText in e2e/flood-check.ts).
 */
export function tapFlood(serialSocket: string, bytes: number, rate: number, tag: string, opts: { numbered?: boolean } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const cmd = `flood ${bytes} ${rate} ${tag}${opts.numbered ? ' numbered' : ''}\n`;
    const c = net.createConnection(`${serialSocket}.ctl`, () => c.write(cmd));
    c.on('data', (d) => (d.toString().startsWith('done') ? resolve() : reject(new Error(`serial tap: ${d.toString().trim()}`))));
    c.on('error', reject);
  });
}

/** Waits (polling the store) until a VM reaches one of `states`, changed at or after `since`. */
export async function waitState<V extends { name: string; state: string; stateSince: number }>(
  host: { vms: { service: { get(ref: string): V } } },
  ref: string,
  states: Array<V['state']>,
  timeoutMs: number,
  since = 0,
): Promise<V> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = host.vms.service.get(ref);
    if (states.includes(info.state) && info.stateSince >= since) return info;
    if (Date.now() > deadline) throw new Error(`${info.name} is ${info.state}, not ${states.join('/')}, after ${timeoutMs} ms`);
    await sleep(5);
  }
}

/**
 * A guest's CPU figure (percent of a core) clearly above its idle ones: how much CPU a busy
 * guest gets depends on what else the machine runs (15 % of a core at times on a loaded
 * 2-core machine), so this is relative to idle samples taken on the same machine just before.
 */
export function busyThreshold(idle: number[]): number {
  const sorted = [...idle].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1] ?? 0;
  return Math.max(2 * median, median + 5);
}

/** A TCP port free on loopback right now: for forwards, so two suites on one machine never collide. */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
