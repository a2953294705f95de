// Fencing with real parts: a 3-member etcd on loopback, the host's HA side as its own process,
// the real fencer process, a real QEMU of the tiny guest. The host loses its lease two ways — its
// process frozen (SIGSTOP), or the etcd member it talks to frozen — and the fencer must kill the
// guarded QEMU at least 2 s before etcd expires the lease, as seen by another client watching the
// lease's key. A guarded pid that now belongs to another process is never killed; a fenced host
// refuses HA starts until it holds a fresh lease.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Etcd3 } from 'etcd3';
import { monotonicMs } from '../../electron/core/ha/monotonic';
import { fencerFiles, type FenceRecord, type Guard } from '../../electron/core/ha/fencer/protocol';
import { findFencer, readFenceRecord } from '../../electron/core/ha/fencer/client';
import { processStartTime } from '../../electron/core/qemu/proc';
import { FIXTURE, tempDir, waitFor } from '../helpers';
import { EtcdCluster } from './etcd-cluster';

const ROOT = path.join(__dirname, '..', '..');
const FENCER_ENTRY = path.join(ROOT, 'out', 'electron', 'core', 'ha', 'fencer', 'main.js');
const HOST_SCRIPT = path.join(__dirname, 'ha-host-process.ts');
const TTL_SEC = 5;
// the fencer acts 2.5 s before the earliest possible expiry: the test asks for 2 s, the rest
// absorbs a late timer on this loaded machine
const MARGIN_MS = 2500;

let etcd: EtcdCluster;
const children: ChildProcess[] = [];
const fencerDirs: string[] = [];
const clients: Etcd3[] = [];

function track<T extends ChildProcess>(c: T): T {
  children.push(c);
  return c;
}

async function startQemu(): Promise<{ child: ChildProcess; guard: Guard; exited: Promise<NodeJS.Signals | null> }> {
  const child = track(
    spawn(
      'qemu-system-x86_64',
      [
        '-nodefaults',
        '-accel',
        'tcg',
        '-m',
        '96',
        '-display',
        'none',
        '-serial',
        'null',
        '-kernel',
        FIXTURE.kernel,
        '-initrd',
        FIXTURE.initrd,
        '-append',
        'console=ttyS0',
      ],
      { stdio: 'ignore' },
    ),
  );
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, sig) => resolve(sig)));
  const startTime = await waitFor('QEMU to run', () => processStartTime(child.pid!));
  return { child, guard: { vm: 'ha-guest', pid: child.pid!, startTime }, exited };
}

interface Host {
  child: ChildProcess;
  fencerDir: string;
  events: string[];
  status(): Promise<{ blocker: string | null; fence: FenceRecord | null }>;
}

async function startHost(hostId: string, etcdHosts: string[], guards: Guard[]): Promise<Host> {
  const fencerDir = path.join(tempDir('corral-ha-'), 'ha');
  fencerDirs.push(fencerDir);
  const cfg = { etcdHosts, hostId, fencerDir, fencerEntry: FENCER_ENTRY, ttlSec: TTL_SEC, marginMs: MARGIN_MS, guards };
  const child = track(
    spawn(process.execPath, ['--import', 'tsx', HOST_SCRIPT], {
      cwd: ROOT,
      env: { ...process.env, CORRAL_HA_HOST: JSON.stringify(cfg) },
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const events: string[] = [];
  const waiting: Array<(o: { blocker: string | null; fence: FenceRecord | null }) => void> = [];
  let ready = false;
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    const o = JSON.parse(line) as { ev: string; what?: string; message?: string; blocker: string | null; fence: FenceRecord | null };
    if (o.ev === 'ready') ready = true;
    else if (o.ev === 'event') events.push(o.what!);
    else if (o.ev === 'error') events.push(`error: ${o.message}`);
    else if (o.ev === 'status') waiting.shift()?.(o);
  });
  await waitFor('the host to take its lease', () => ready || events.some((e) => e.startsWith('error')), 120_000, 50);
  if (!ready) throw new Error(events.join('\n'));
  return {
    child,
    fencerDir,
    events,
    status: () =>
      new Promise((resolve) => {
        waiting.push(resolve);
        child.stdin!.write('status\n');
      }),
  };
}

/** Resolves with the CLOCK_MONOTONIC time at which `watcher` sees `key` deleted. */
async function deletionOf(watcher: Etcd3, key: string): Promise<{ at: Promise<number> }> {
  const w = await watcher.watch().key(key).create();
  // wrapped: an async function returning a bare promise would wait for the deletion itself
  const at = new Promise<number>((resolve) =>
    w.on('delete', () => {
      resolve(monotonicMs());
      void w.cancel();
    }),
  );
  return { at };
}

beforeAll(async () => {
  if (!fs.existsSync(FENCER_ENTRY)) throw new Error(`${FENCER_ENTRY} is missing: run npm run build first`);
  etcd = await EtcdCluster.start(3);
});

afterAll(async () => {
  for (const c of children) {
    try {
      c.kill('SIGCONT');
      c.kill('SIGKILL');
    } catch {}
  }
  for (const dir of fencerDirs) {
    const pid = findFencer(fencerFiles(dir));
    if (pid) process.kill(pid, 'SIGKILL');
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  }
  for (const c of clients) c.close();
  etcd?.stop();
});

describe('fencing an HA host that lost its lease', () => {
  it('kills the guarded QEMU of a frozen host process at least 2 s before etcd expires its lease', async () => {
    const qemu = await startQemu();
    const host = await startHost(
      'h1',
      etcd.members.map((m) => m.clientUrl),
      [qemu.guard],
    );
    const watcher = etcd.client(2);
    clients.push(watcher);
    const deleted = await deletionOf(watcher, 'corral/hosts/h1/alive');
    await new Promise((r) => setTimeout(r, 1500)); // a few renewals first
    host.child.kill('SIGSTOP');
    const deletedAt = await deleted.at;
    const rec = await waitFor('the fence record', () => readFenceRecord(host.fencerDir), 30_000);
    expect(await qemu.exited).toBe('SIGKILL');
    expect(rec.killed.map((g) => g.pid)).toEqual([qemu.guard.pid]);
    const margin = deletedAt - rec.firedMs;
    console.log(`frozen host: fenced ${margin.toFixed(0)} ms before etcd deleted the lease's key`);
    expect(margin).toBeGreaterThanOrEqual(2000);
    expect(fs.readFileSync(fencerFiles(host.fencerDir).log, 'utf8')).toMatch(/FENCED .*killed ha-guest \(pid \d+\)/);

    // thawed, the host finds its lease gone and takes a fresh one; the fence is then cleared
    host.child.kill('SIGCONT');
    await waitFor('a fresh lease', () => host.events.filter((e) => /^lease \w+ granted$/.test(e)).length >= 2, 60_000, 100);
    await waitFor('the fence to be cleared', async () => (await host.status()).blocker === null, 30_000, 200);
  });

  it('kills it when the etcd member the host talks to freezes, and refuses HA starts until a fresh lease', async () => {
    const qemu = await startQemu();
    const member = etcd.members[0]!;
    const host = await startHost('h2', [member.clientUrl], [qemu.guard]);
    expect((await host.status()).blocker).toBeNull();
    const watcher = etcd.client(1);
    clients.push(watcher);
    const deleted = await deletionOf(watcher, 'corral/hosts/h2/alive');
    await new Promise((r) => setTimeout(r, 1500));
    member.child.kill('SIGSTOP');
    try {
      const deletedAt = await deleted.at;
      const rec = await waitFor('the fence record', () => readFenceRecord(host.fencerDir), 30_000);
      expect(await qemu.exited).toBe('SIGKILL');
      const margin = deletedAt - rec.firedMs;
      console.log(`host cut off from etcd: fenced ${margin.toFixed(0)} ms before etcd deleted the lease's key`);
      expect(margin).toBeGreaterThanOrEqual(2000);
      // the host runs on, cut off: it says why it will not start an HA VM
      expect((await host.status()).blocker).toMatch(/fenced its HA guests/);
    } finally {
      member.child.kill('SIGCONT');
    }
    await waitFor('the host to rejoin with a fresh lease', async () => (await host.status()).blocker === null, 120_000, 500);
    expect(readFenceRecord(host.fencerDir)).toBeNull();
  });

  it('never kills a guarded pid that now belongs to another process', async () => {
    // the same pid with another start time is exactly what a reused pid looks like to the fencer
    const other = track(spawn('sleep', ['600'], { stdio: 'ignore' }));
    const start = await waitFor('sleep to run', () => processStartTime(other.pid!));
    const reused: Guard = { vm: 'gone-guest', pid: other.pid!, startTime: String(Number(start) - 1) };
    const host = await startHost(
      'h3',
      etcd.members.map((m) => m.clientUrl),
      [reused],
    );
    host.child.kill('SIGSTOP');
    const rec = await waitFor('the fence record', () => readFenceRecord(host.fencerDir), 60_000);
    expect(rec.killed).toEqual([]);
    expect(rec.gone.map((g) => g.pid)).toEqual([other.pid]);
    expect(processStartTime(other.pid!)).toBe(start);
  });
});
