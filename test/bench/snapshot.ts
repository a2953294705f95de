// Snapshot rows: a live snapshot with RAM (the guest's pause, and the whole call) and a revert
// with RAM (until the guest runs again), each beside the same snapshot-save / snapshot-load
// sent by hand over QMP to a bare QEMU with the same memory, disk and guest in the same run.
// BENCH_SNAPSHOT_MIB sets the guest's memory (default 1024).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONFIG_DEFAULTS } from '../../electron/core/api/contract';
import { Host } from '../../electron/core/host/host';
import { createQcow2 } from '../../electron/core/qemu/img';
import { FIXTURE, FIXTURE_DIR, tempDir, waitFor } from '../helpers';
import { ms, type Row } from './lib';

const MIB = Number(process.env.BENCH_SNAPSHOT_MIB ?? 1024);
const SETTLE_MS = 20_000;

/** A minimal QMP client for the floor: commands in order, events timed as they arrive. */
async function qmp(sock: string) {
  const s = await waitFor(
    'bare QEMU QMP',
    () =>
      new Promise<net.Socket | null>((resolve) => {
        const c = net.createConnection(sock);
        c.once('connect', () => resolve(c));
        c.once('error', () => resolve(null));
      }),
    30_000,
    50,
  );
  let buf = '';
  const waiting: Array<(m: Record<string, unknown>) => void> = [];
  const events: Array<{ event: string; at: number }> = [];
  s.on('data', (d) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const m = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
      buf = buf.slice(nl + 1);
      if ('event' in m) events.push({ event: m.event as string, at: performance.now() });
      else if ('return' in m || 'error' in m) waiting.shift()?.(m);
    }
  });
  const ex = (execute: string, args?: Record<string, unknown>) =>
    new Promise<Record<string, unknown>>((resolve) => {
      waiting.push(resolve);
      s.write(JSON.stringify({ execute, ...(args ? { arguments: args } : {}) }) + '\n');
    });
  await ex('qmp_capabilities');
  return { ex, events, close: () => s.destroy() };
}

/** Runs a job to its end on the bare QEMU; returns the time from the command until RESUME. */
async function bareJob(c: Awaited<ReturnType<typeof qmp>>, kind: 'save' | 'load', tag: string) {
  const t0 = performance.now();
  const from = c.events.length;
  await c.ex(`snapshot-${kind}`, { 'job-id': `${kind}-${tag}`, tag, vmstate: 'd0', devices: ['d0'] });
  for (;;) {
    const jobs = (await c.ex('query-jobs')).return as Array<{ id: string; status: string }>;
    if (jobs.find((j) => j.id === `${kind}-${tag}`)?.status === 'concluded') break;
    await sleep(20);
  }
  const total = performance.now() - t0;
  await c.ex('job-dismiss', { id: `${kind}-${tag}` });
  const ev = c.events.slice(from);
  const stop = ev.find((e) => e.event === 'STOP')?.at ?? t0;
  const resume = ev.find((e) => e.event === 'RESUME')?.at ?? t0 + total;
  return { total, pause: resume - stop, untilRunning: resume - t0 };
}

async function bareFloor(dir: string) {
  const disk = path.join(dir, 'bare.qcow2');
  await createQcow2(disk, 64 * 1024 * 1024);
  const sock = path.join(dir, 'bare-qmp.sock');
  const child = spawn(
    'qemu-system-x86_64',
    [
      ...['-machine', 'q35', '-accel', 'tcg', '-cpu', 'Westmere-v1', '-m', String(MIB), '-display', 'none', '-nodefaults'],
      ...['-blockdev', JSON.stringify({ driver: 'file', filename: disk, 'node-name': 'f0' })],
      ...['-blockdev', JSON.stringify({ driver: 'qcow2', file: 'f0', 'node-name': 'd0' }), '-device', 'virtio-blk-pci,drive=d0'],
      ...[
        '-kernel',
        FIXTURE.kernel,
        '-initrd',
        FIXTURE.initrd,
        '-append',
        'console=ttyS0 quiet',
        '-qmp',
        `unix:${sock},server=on,wait=off`,
      ],
    ],
    { stdio: 'ignore' },
  );
  await sleep(SETTLE_MS);
  const c = await qmp(sock);
  try {
    const save = await bareJob(c, 'save', 'b1');
    const load = await bareJob(c, 'load', 'b1');
    return { save, load };
  } finally {
    c.close();
    child.kill('SIGKILL');
  }
}

export async function snapshotRows(): Promise<Row[]> {
  const dataDir = tempDir('corral-bench-snap-');
  const host = await Host.start({ dataDir, kind: 'bench', env: { ...process.env, CORRAL_ACCEL: 'tcg' } });
  try {
    host.vms.pools.add('fixtures', FIXTURE_DIR);
    const vm = await host.vms.service.create({
      ...CONFIG_DEFAULTS,
      firmware: 'bios',
      name: 'snap-bench',
      memoryMiB: MIB,
      kernel: FIXTURE.kernel,
      initrd: FIXTURE.initrd,
      append: 'console=ttyS0 quiet',
      disk: { size: 64 * 1024 * 1024 },
    } as Parameters<Host['vms']['service']['create']>[0]);
    await host.vms.lifecycle.start(vm.id);
    await sleep(SETTLE_MS);
    const snaps = host.snapshots!.snapshots;
    const t0 = performance.now();
    const s = await snaps.create(vm.id, { name: 'bench', description: '', memory: true });
    const total = performance.now() - t0;
    const t1 = performance.now();
    await snaps.revert(vm.id, 'bench');
    const revert = performance.now() - t1;
    await host.vms.lifecycle.kill(vm.id);
    const floor = await bareFloor(dataDir);
    const pause = s.pauseMs ?? 0;
    const row = (name: string, value: number, f: number): Row => ({
      name,
      value: ms(value),
      floor: ms(f),
      target: `≤ 1.2 × floor = ${ms(1.2 * f)}`,
      ok: value <= 1.2 * f,
    });
    return [
      row(`live snapshot, ${MIB} MiB RAM: guest paused`, pause, floor.save.pause),
      row(`live snapshot, ${MIB} MiB RAM: total`, total, floor.save.total),
      row(`revert with RAM, ${MIB} MiB: until the guest runs again`, revert, floor.load.untilRunning),
    ];
  } finally {
    await host.close({ stopGuests: true, timeoutSec: 0 });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
