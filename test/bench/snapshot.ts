// Snapshot rows: a live snapshot with RAM (the guest's pause, and the whole call) and a revert
// with RAM (until the guest runs again), each beside the floor: the same snapshot-save /
// snapshot-load job (same tag kind, vmstate node and device list) sent by hand over QMP to a
// bare QEMU started with the argv Corral builds for an identical VM (its own fresh disk of the
// same size). Both guests run side by side and the rounds alternate who goes first, so both
// see the same machine load; each row is a median. Pauses on both sides come from QEMU's own
// STOP and RESUME timestamps. BENCH_SNAPSHOT_MIB sets the guests' memory (default 1024),
// BENCH_SNAPSHOT_RUNS the rounds (default 3).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONFIG_DEFAULTS } from '../../electron/core/api/contract';
import { Host } from '../../electron/core/host/host';
import { diskNode } from '../../electron/core/qemu/ids';
import { vmFiles } from '../../electron/core/paths';
import { FIXTURE, FIXTURE_DIR, tempDir, waitFor } from '../helpers';
import { median, ms, type Row } from './lib';

const MIB = Number(process.env.BENCH_SNAPSHOT_MIB ?? 1024);
const RUNS = Number(process.env.BENCH_SNAPSHOT_RUNS ?? 3);
const SETTLE_MS = 20_000;

interface Event {
  event: string;
  data?: Record<string, unknown>;
  /** QEMU's own time of the event, ms */
  qemuAt: number;
  /** when it arrived here (performance.now) */
  at: number;
}

/** A minimal QMP client for the floor: commands answered in order, events timed as they arrive. */
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
  const events: Event[] = [];
  let onEvent: (() => void) | null = null;
  s.on('data', (d) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const m = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
      buf = buf.slice(nl + 1);
      if ('event' in m) {
        const t = m.timestamp as { seconds: number; microseconds: number };
        events.push({
          event: m.event as string,
          data: m.data as Record<string, unknown>,
          qemuAt: t.seconds * 1000 + t.microseconds / 1000,
          at: performance.now(),
        });
        onEvent?.();
      } else if ('return' in m || 'error' in m) waiting.shift()?.(m);
    }
  });
  const ex = (execute: string, args?: Record<string, unknown>) =>
    new Promise<Record<string, unknown>>((resolve) => {
      waiting.push(resolve);
      s.write(JSON.stringify({ execute, ...(args ? { arguments: args } : {}) }) + '\n');
    });
  /** The first event from index `from` on that matches. */
  const next = (from: number, match: (e: Event) => boolean) =>
    new Promise<Event>((resolve) => {
      const look = () => {
        const e = events.slice(from).find(match);
        if (e) {
          onEvent = null;
          resolve(e);
        }
      };
      onEvent = look;
      look();
    });
  await ex('qmp_capabilities');
  return { ex, events, next, close: () => s.destroy() };
}

type Qmp = Awaited<ReturnType<typeof qmp>>;

/**
 * The job by hand, as a client that knows QEMU would run it: started, its end heard as the
 * JOB_STATUS_CHANGE event, its result asked for and the job dismissed in one round trip.
 */
async function bareJob(c: Qmp, kind: 'save' | 'load', tag: string) {
  const id = `${kind}-${tag}`;
  const from = c.events.length;
  const t0 = performance.now();
  const reply = await c.ex(`snapshot-${kind}`, { 'job-id': id, tag, vmstate: diskNode(0), devices: [diskNode(0)] });
  if ('error' in reply) throw new Error(`bare snapshot-${kind}: ${JSON.stringify(reply.error)}`);
  await c.next(from, (e) => e.event === 'JOB_STATUS_CHANGE' && e.data?.id === id && e.data?.status === 'concluded');
  const [jobs] = await Promise.all([c.ex('query-jobs'), c.ex('job-dismiss', { id })]);
  const total = performance.now() - t0;
  const job = (jobs.return as Array<{ id: string; error?: string }>).find((j) => j.id === id);
  if (job?.error) throw new Error(`bare snapshot-${kind}: ${job.error}`);
  const ev = c.events.slice(from);
  const stop = ev.find((e) => e.event === 'STOP');
  const resume = ev.find((e) => e.event === 'RESUME');
  if (!stop || !resume) throw new Error(`bare snapshot-${kind}: no STOP/RESUME`);
  return { total, pause: resume.qemuAt - stop.qemuAt, untilRunning: resume.at - t0 };
}

export async function snapshotRows(): Promise<Row[]> {
  const dataDir = tempDir('corral-bench-snap-');
  const host = await Host.start({ dataDir, kind: 'bench', env: { ...process.env, CORRAL_ACCEL: 'tcg' } });
  let bare: ReturnType<typeof spawn> | null = null;
  let c: Qmp | null = null;
  try {
    host.vms.pools.add('fixtures', FIXTURE_DIR);
    const make = (name: string) =>
      host.vms.service.create({
        ...CONFIG_DEFAULTS,
        firmware: 'bios',
        name,
        memoryMiB: MIB,
        kernel: FIXTURE.kernel,
        initrd: FIXTURE.initrd,
        append: 'console=ttyS0 quiet',
        disk: { size: 64 * 1024 * 1024 },
        // slirp, which the bare QEMU can run too (a passt NIC needs Corral to start passt)
        nics: [{ kind: 'user', bridge: null, network: null, forwards: [] }],
      } as Parameters<Host['vms']['service']['create']>[0]);
    const vm = await make('snap-bench');
    const twin = await make('snap-floor');

    // the floor's QEMU: the very argv Corral launched (read back from the process), with the
    // twin's id, name and MAC; spawned in its own session like Corral's, held at -S, then cont
    const { pid } = await host.vms.lifecycle.start(vm.id);
    const mac = (v: typeof vm) => host.vms.service.get(v.id).config.nics[0]!.mac!;
    const argv = fs
      .readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .slice(1, -1)
      .map((a) => a.replaceAll(vm.id, twin.id).replaceAll(`guest=${vm.name}`, `guest=${twin.name}`).replaceAll(mac(vm), mac(twin)));
    const files = vmFiles(host.layout, twin.id);
    fs.mkdirSync(files.runDir, { recursive: true, mode: 0o700 });
    bare = spawn(fs.readlinkSync(`/proc/${pid}/exe`), argv, { stdio: 'ignore', detached: true });
    c = await qmp(files.qmpSocket);
    await c.ex('cont');
    await sleep(SETTLE_MS);

    const snaps = host.snapshots!.snapshots;
    const ours = { pause: [] as number[], total: [] as number[], revert: [] as number[] };
    const floor = { pause: [] as number[], total: [] as number[], revert: [] as number[] };
    // when Corral's QEMU says the guest runs again, heard as the floor hears it: its RESUME event
    let resumedAt = 0;
    host.vms.registry.get(vm.id)!.machine.onEvent((e) => {
      if (e.event === 'RESUME') resumedAt = performance.now();
    });
    const corral = async (i: number) => {
      const t0 = performance.now();
      const s = await snaps.create(vm.id, { name: `bench-${i}`, description: '', memory: true });
      ours.total.push(performance.now() - t0);
      ours.pause.push(s.pauseMs ?? 0);
      const t1 = performance.now();
      await snaps.revert(vm.id, s.name);
      if (resumedAt < t1) throw new Error('the reverted guest never resumed');
      ours.revert.push(resumedAt - t1);
    };
    const byHand = async (i: number) => {
      const save = await bareJob(c!, 'save', `b${i}`);
      floor.total.push(save.total);
      floor.pause.push(save.pause);
      floor.revert.push((await bareJob(c!, 'load', `b${i}`)).untilRunning);
    };
    for (let i = 0; i < RUNS; i++) {
      if (i % 2 === 0) {
        await corral(i);
        await byHand(i);
      } else {
        await byHand(i);
        await corral(i);
      }
    }
    console.error('snapshot rounds (ms):', JSON.stringify({ ours, floor }));
    const row = (name: string, value: number[], f: number[]): Row => ({
      name: `${name} (median of ${RUNS})`,
      value: ms(median(value)),
      floor: `${ms(median(f))} (same job by hand, bare QEMU, same argv)`,
      target: `≤ 1.2 × floor = ${ms(1.2 * median(f))}`,
      ok: median(value) <= 1.2 * median(f),
    });
    return [
      row(`live snapshot, ${MIB} MiB RAM: guest paused`, ours.pause, floor.pause),
      row(`live snapshot, ${MIB} MiB RAM: total`, ours.total, floor.total),
      row(`revert with RAM, ${MIB} MiB: until the guest runs again`, ours.revert, floor.revert),
    ];
  } finally {
    c?.close();
    bare?.kill('SIGKILL');
    await host.close({ stopGuests: true, timeoutSec: 0 });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
