// `npm run bench`: measured figures for the targets of the issues, printed as a table.
// Real QEMU (TCG) and a real host; no timed assertions live in the test suite.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONFIG_DEFAULTS } from '../../electron/core/api/contract';
import { Host, type HostOptions } from '../../electron/core/host/host';
import { buildArgv } from '../../electron/core/qemu/argv';
import { vmFiles } from '../../electron/core/paths';
import { QmpClient } from '../../electron/core/qemu/qmp';
import { BOOT_MS, FIXTURE, FIXTURE_DIR, tempDir, waitState } from '../helpers';

const RUNS = Number(process.env.BENCH_RUNS ?? 12);

import { authRows } from './auth';
import { bareParallelStart } from './bare-start';
import { consoleRows } from './consoles';
import { fuzzRow } from './fuzz';
import { median, ms, printTable, type Row } from './lib';
import { haRows } from './ha';
import { clusterRows } from './cluster';
import { listRows } from './ui-list';
import { portableRows } from './portable';
import { shareRows } from './shares';
import { migrationRows } from './migration';
import { networkRows } from './network';
import { snapshotRows } from './snapshot';

/**
 * Bare QEMU, same argv: spawn until the QMP greeting arrives, the floor for a start. Also when
 * QEMU answers its first command: QMP's I/O runs in its own thread and greets early, but
 * commands wait until QEMU has built the machine, so no start can be running before that.
 */
async function bareQemuToQmp(argv: string[], qmpSocket: string): Promise<{ greeting: number; ready: number }> {
  fs.rmSync(qmpSocket, { force: true });
  const t0 = performance.now();
  // in its own session, as Corral starts QEMU: with autogroup scheduling a session is a group
  // of its own, so a floor left in the bench's session would be slowed by load that ours is not
  const child = spawn('qemu-system-x86_64', argv, { stdio: 'ignore', detached: true });
  try {
    for (;;) {
      const greeted = await new Promise<{ greeting: number; ready: number } | null>((resolve) => {
        const s = net.createConnection(qmpSocket);
        let greeting = 0;
        let buf = '';
        s.on('data', (d) => {
          if (!greeting) {
            greeting = performance.now() - t0;
            s.write('{"execute":"qmp_capabilities"}\n');
          }
          buf += d.toString();
          if (buf.includes('"return"')) {
            s.destroy();
            resolve({ greeting, ready: performance.now() - t0 });
          }
        });
        s.once('error', () => resolve(null));
        s.once('close', () => resolve(null));
      });
      if (greeted) return greeted;
      await sleep(1);
    }
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
}

type BenchVm = { id: string; name: string; config: Parameters<typeof buildArgv>[0]['config'] };

/** A VM's own argv, with its QMP, serial and other files moved aside for a bare QEMU. */
function bareArgv(host: Host, vm: BenchVm) {
  const files = vmFiles(host.layout, vm.id);
  const moved = {
    ...files,
    pidFile: path.join(files.dir, 'bare.pid'),
    qmpSocket: path.join(files.runDir, 'bare-qmp.sock'),
    serialSocket: path.join(files.runDir, 'bare-serial.sock'),
    serialLog: path.join(files.dir, 'bare-serial.log'),
    vncSocket: path.join(files.runDir, 'bare-vnc.sock'),
    qgaSocket: path.join(files.runDir, 'bare-qga.sock'),
  };
  return { argv: buildArgv({ id: vm.id, name: vm.name, config: vm.config, files: moved }, host.caps), files: moved };
}

/** The floor for a VM of `host`, with its argv, its QMP socket moved aside. */
function bareFloor(host: Host, vm: BenchVm) {
  const { argv, files } = bareArgv(host, vm);
  return () => bareQemuToQmp(argv, files.qmpSocket);
}

/**
 * Bare QEMUs of these VMs, booted, then the ACPI button pressed on all of them at once by hand:
 * the time until every one has exited. The floor of a parallel shutdown: the guests share the
 * machine's cores while they shut down, as they do when the host stops them.
 */
async function bareParallelAcpiStop(host: Host, vms: BenchVm[]): Promise<number> {
  const bares = vms.map((vm) => bareArgv(host, vm));
  const children = bares.map(({ argv, files }) => {
    fs.mkdirSync(files.runDir, { recursive: true });
    fs.rmSync(files.qmpSocket, { force: true });
    fs.rmSync(files.serialLog, { force: true });
    // a session of its own, as the host starts QEMU (see bare-start.ts: autogroups)
    return spawn('qemu-system-x86_64', argv, { stdio: 'ignore', detached: true });
  });
  const exits = children.map((c) => new Promise((resolve) => c.once('exit', resolve)));
  const qmps: QmpClient[] = [];
  try {
    for (const { files } of bares) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          qmps.push(await QmpClient.connect(files.qmpSocket, 30_000));
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await sleep(5);
        }
      }
    }
    await Promise.all(qmps.map((q) => q.execute('cont')));
    for (const { files } of bares) {
      const deadline = Date.now() + BOOT_MS;
      while (!(fs.existsSync(files.serialLog) && fs.readFileSync(files.serialLog, 'latin1').includes(FIXTURE.banner))) {
        if (Date.now() > deadline) throw new Error(`a bare guest did not boot within ${BOOT_MS} ms`);
        await sleep(100);
      }
    }
    const t0 = performance.now();
    await Promise.all(qmps.map((q) => q.execute('system_powerdown')));
    await Promise.all(exits);
    return performance.now() - t0;
  } finally {
    qmps.forEach((q) => q.close());
    children.forEach((c) => c.kill('SIGKILL'));
    await Promise.all(exits);
  }
}

const floorText = (greeting: number, ready: number) => `${ms(greeting)} (bare QEMU → QMP greeting; first reply at ${ms(ready)})`;

async function startLatency(): Promise<Row[]> {
  const dataDir = tempDir('corral-bench-');
  const host = await benchHost(dataDir, { ...process.env, CORRAL_ACCEL: 'tcg' });
  try {
    const vm = await host.vms.service.create(guest('bench', { restart: 'never' }));
    const bare = bareFloor(host, vm);
    const ours: number[] = [];
    const floor: number[] = [];
    const ready: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      await host.vms.lifecycle.start(vm.id);
      ours.push(performance.now() - t0);
      await host.vms.lifecycle.kill(vm.id);
      // the floor, interleaved so both see the same machine load
      const f = await bare();
      floor.push(f.greeting);
      ready.push(f.ready);
    }
    const m = median(ours);
    const f = median(floor);
    const r = median(ready);
    return [
      {
        name: `start latency (API start → running, median of ${RUNS})`,
        value: ms(m),
        floor: floorText(f, r),
        target: `≤ 1.5 × floor = ${ms(1.5 * f)}`,
        ok: m <= 1.5 * f,
      },
      // QEMU answers its first command only once it has built the machine, and `cont` cannot
      // come sooner: what the host adds is measured against that answer
      {
        name: `start latency beyond bare QEMU's first reply (median of ${RUNS})`,
        value: `${m >= r ? '+' : ''}${ms(m - r)}`,
        floor: `${ms(r)} (bare QEMU → first QMP reply)`,
        target: '≤ +25 ms',
        ok: m - r <= 25,
      },
    ];
  } finally {
    await host.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** A host on dataDir whose pool "fixtures" holds the guest's kernel and initrd. */
async function benchHost(dataDir: string, env: NodeJS.ProcessEnv, autostart?: HostOptions['autostart']): Promise<Host> {
  const host = await Host.start({ dataDir, kind: 'bench', env, ...(autostart ? { autostart } : {}) });
  if (!host.vms.pools.list().some((p) => p.name === 'fixtures')) host.vms.pools.add('fixtures', FIXTURE_DIR);
  return host;
}

function guest(
  name: string,
  extra: Partial<Parameters<Host['vms']['service']['create']>[0]> = {},
): Parameters<Host['vms']['service']['create']>[0] {
  return {
    ...CONFIG_DEFAULTS,
    name,
    memoryMiB: 192,
    disk: null,
    kernel: FIXTURE.kernel,
    initrd: FIXTURE.initrd,
    append: 'console=ttyS0 quiet',
    restart: 'always',
    maxCrashes: 1000,
    // slirp, which the bare QEMU of a floor row can run too (a passt NIC needs Corral to start passt)
    nics: [{ kind: 'user', bridge: null, network: null, forwards: [] }],
    ...extra,
  };
}

/** Resolves with the time the VM is next reported running with a pid other than `oldPid`. */
function nextRunning(host: Host, id: string, oldPid: number | null): Promise<number> {
  return new Promise((resolve) => {
    const on = (vm: { id: string; state: string; pid: number | null }) => {
      if (vm.id === id && vm.state === 'running' && vm.pid !== oldPid) {
        host.vms.journal.off('changed', on);
        resolve(performance.now());
      }
    };
    host.vms.journal.on('changed', on);
  });
}

async function crashToRunning(): Promise<Row[]> {
  const dataDir = tempDir('corral-bench-');
  const host = await benchHost(dataDir, { ...process.env, CORRAL_ACCEL: 'tcg' });
  try {
    // SIGKILL of QEMU until the replacement reports running; each run is a first restart (no backoff)
    const vm = await host.vms.service.create(guest('crash'));
    const bare = bareFloor(host, vm);
    const crash: number[] = [];
    const floor: number[] = [];
    const ready: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const { pid } = await host.vms.lifecycle.start(vm.id);
      const t0 = performance.now();
      const running = nextRunning(host, vm.id, pid);
      process.kill(pid!, 'SIGKILL');
      crash.push((await running) - t0);
      await host.vms.lifecycle.kill(vm.id);
      // the floor, interleaved so both see the same machine load
      const f = await bare();
      floor.push(f.greeting);
      ready.push(f.ready);
    }
    const f = median(floor);
    const r = median(ready);
    const c = median(crash);
    return [
      {
        name: `crash → running (SIGKILL of QEMU, median of ${RUNS})`,
        value: ms(c),
        floor: floorText(f, r),
        target: `≤ floor + 50 ms = ${ms(f + 50)}`,
        ok: c <= f + 50,
      },
      {
        name: `crash → running beyond bare QEMU's first reply (median of ${RUNS})`,
        value: `${c >= r ? '+' : ''}${ms(c - r)}`,
        floor: `${ms(r)} (bare QEMU → first QMP reply)`,
        target: '≤ +50 ms',
        ok: c - r <= 50,
      },
    ];
  } finally {
    await host.close({ stopGuests: true, timeoutSec: 0 });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** A guest kernel panic (pvpanic) until running again, from QEMU's own timestamp of the panic event. */
async function panicToRunning(): Promise<Row> {
  const dataDir = tempDir('corral-bench-');
  const host = await benchHost(dataDir, { ...process.env, CORRAL_ACCEL: 'tcg' });
  try {
    const p = await host.vms.service.create(guest('panic', { append: 'console=ttyS0 quiet corral.panic=0' }));
    const panic: number[] = [];
    const panicRuns = Math.min(RUNS, 10);
    for (let i = 0; i < panicRuns; i++) {
      const { pid } = await host.vms.lifecycle.start(p.id);
      const running = new Promise<number>((resolve) => {
        const on = (v: { id: string; state: string; pid: number | null }) => {
          if (v.id === p.id && v.state === 'running' && v.pid !== pid) {
            host.vms.journal.off('changed', on);
            resolve(Date.now());
          }
        };
        host.vms.journal.on('changed', on);
      });
      const at = await running;
      const ev = host.events.list(20, p.id).find((e) => e.report?.qmpEvents.some((q) => q.event === 'GUEST_PANICKED'));
      const panicAt = ev!.report!.qmpEvents.find((q) => q.event === 'GUEST_PANICKED')!.at!;
      panic.push(at - panicAt);
      await host.vms.service.update({ vm: p.id, restart: 'never', live: false });
      await waitState(host, p.id, ['crashed', 'stopped', 'running'], 60_000);
      if (host.vms.service.get(p.id).pid) await host.vms.lifecycle.kill(p.id);
      await host.vms.service.update({ vm: p.id, restart: 'always', live: false });
    }
    return {
      name: `guest panic → running (after the panic event, median of ${panicRuns})`,
      value: ms(median(panic)),
      floor: '-',
      target: '≤ 150 ms',
      ok: median(panic) <= 150,
    };
  } finally {
    await host.close({ stopGuests: true, timeoutSec: 0 });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function tenGuests(): Promise<Row[]> {
  const dataDir = tempDir('corral-bench-');
  const env = { ...process.env, CORRAL_ACCEL: 'tcg' };
  let host = await benchHost(dataDir, env);
  try {
    for (let i = 0; i < 10; i++) await host.vms.lifecycle.start((await host.vms.service.create(guest(`idle-${i}`, { memoryMiB: 128 }))).id);
    await sleep(15_000); // let the guests finish booting
    // host restart: detach, start a new host, until all 10 are reattached
    await host.close();
    const t0 = performance.now();
    host = await benchHost(dataDir, env);
    const reattach = performance.now() - t0;
    const running = host.vms.service.list().filter((v) => v.state === 'running').length;
    // the host's own CPU while 10 idle guests run
    const secs = Number(process.env.BENCH_CPU_SECONDS ?? 60);
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    await sleep(secs * 1000);
    const c = process.cpuUsage(c0);
    const cpu = ((c.user + c.system) / 1000 / (performance.now() - w0)) * 100;
    return [
      {
        name: 'host restart → 10 running VMs reattached',
        value: `${ms(reattach)} (${running}/10 running)`,
        floor: '-',
        target: '≤ 1 s',
        ok: reattach <= 1000 && running === 10,
      },
      {
        name: `host CPU with 10 idle running VMs (${secs} s)`,
        value: `${cpu.toFixed(2)} % of a core`,
        floor: '-',
        target: '< 1 %',
        ok: cpu < 1,
      },
    ];
  } finally {
    await host.close({ stopGuests: true, timeoutSec: 0 });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The host's own CPU while it samples statistics of 20 running VMs (each with a disk, as real ones have) every 2 s. */
async function statsCost(): Promise<Row> {
  const dataDir = tempDir('corral-bench-');
  const host = await benchHost(dataDir, { ...process.env, CORRAL_ACCEL: 'tcg' });
  try {
    for (let i = 0; i < 20; i++)
      await host.vms.lifecycle.start(
        (await host.vms.service.create(guest(`sampled-${i}`, { memoryMiB: 96, disk: { size: 16 * 1024 * 1024 } }))).id,
      );
    await sleep(20_000); // boots settle
    const secs = Number(process.env.BENCH_CPU_SECONDS ?? 60);
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    await sleep(secs * 1000);
    const c = process.cpuUsage(c0);
    const cpu = ((c.user + c.system) / 1000 / (performance.now() - w0)) * 100;
    // proof that sampling really ran: every VM has samples from the measured period
    const session = host.session('bench', () => undefined);
    let sampled = 0;
    for (const vm of host.vms.service.list()) {
      const r = await host.dispatcher.handle(session, { id: 1, method: 'vm.stats', args: { vm: vm.id } });
      if ('result' in r && (r.result as unknown[]).length >= secs / 2 - 2) sampled++;
    }
    return {
      name: `stats sampling, 20 running VMs every 2 s (host process CPU, ${secs} s)`,
      value: `${cpu.toFixed(2)} % of a core (${sampled}/20 sampled)`,
      floor: '-',
      target: '< 1 %',
      ok: cpu < 1 && sampled === 20,
    };
  } finally {
    await host.close({ stopGuests: true, timeoutSec: 0 });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Waits until the VM's serial log shows `n` boots (the banner comes after acpid, which hears the button). */
async function bootedTimes(host: Host, id: string, n: number): Promise<void> {
  const log = vmFiles(host.layout, id).serialLog;
  const deadline = Date.now() + BOOT_MS;
  while ((fs.existsSync(log) ? fs.readFileSync(log, 'latin1').split(FIXTURE.banner).length - 1 : 0) < n) {
    if (Date.now() > deadline) throw new Error(`${id} did not boot within ${BOOT_MS} ms`);
    await sleep(200);
  }
}

/**
 * Autostart of 10 VMs in one order group at host start, beside 10 bare QEMUs started in
 * parallel (each until its guest runs, see bare-start.ts); then the ordered shutdown of those
 * 10 guests, which honour ACPI, beside 10 bare guests stopped by hand at once (and, for
 * reference, the slowest single guest's ACPI stop). The shutdown needs 10 booted guests, which
 * a loaded machine may not manage in time: its failure costs its row only.
 */
async function bootAndShutdown(): Promise<Row[]> {
  const dataDir = tempDir('corral-bench-');
  const env = { ...process.env, CORRAL_ACCEL: 'tcg' };
  let host = await benchHost(dataDir, env, 'never');
  const vms = [];
  for (let i = 0; i < 10; i++)
    vms.push(await host.vms.service.create(guest(`boot-${i}`, { memoryMiB: 256, restart: 'never', autostart: true, autostartOrder: 1 })));
  await host.close();
  try {
    const t0 = performance.now();
    host = await benchHost(dataDir, env, 'always');
    const result = await host.autostarted!;
    const autostart = performance.now() - t0;
    await host.close({ stopGuests: true, timeoutSec: 0 });
    // the shutdown row counts boots in the serial logs from here
    for (const vm of vms) fs.rmSync(vmFiles(host.layout, vm.id).serialLog, { force: true });
    host = await benchHost(dataDir, env, 'never');
    // the floor with no guest running, as at a host start; the bare guests run as they come up
    const floor = await bareParallelStart(vms.map((vm) => bareArgv(host, vm)));
    const rows: Row[] = [
      {
        name: 'host start → 10 autostart VMs (one order group) running',
        value: `${ms(autostart)} (${result.started.length}/10 started)`,
        floor: `${ms(floor)} (10 bare QEMUs in parallel → all guests running)`,
        target: `≤ 1.5 × floor = ${ms(1.5 * floor)}`,
        ok: autostart <= 1.5 * floor && result.started.length === 10,
      },
    ];
    const name = 'ordered shutdown of 10 guests that honour ACPI';
    let open = true;
    try {
      const shut = await orderedShutdown(host, vms);
      open = false;
      host = await benchHost(dataDir, env, 'never');
      open = true;
      const clean = host.vms.service.list().filter((v) => v.lastExit?.reason === 'host-shutdown').length;
      const together = await bareParallelAcpiStop(host, vms);
      rows.push({
        name,
        value: `${ms(shut.shutdown)} (${clean}/10 host-shutdown)`,
        floor: `${ms(together)} (10 bare guests, ACPI button on all at once; slowest alone ${ms(shut.slowest)})`,
        target: `≤ 1.2 × floor = ${ms(1.2 * together)}`,
        ok: shut.shutdown <= 1.2 * together && clean === 10,
      });
    } catch (err) {
      process.exitCode = 1;
      console.error(err);
      rows.push({ name, value: `failed: ${String((err as Error).message).slice(0, 100)}`, floor: '-', target: '-', ok: false });
      // the finally below closes a host that runs
      if (!open) host = await benchHost(dataDir, env, 'never');
    }
    return rows;
  } finally {
    await host.close({ stopGuests: true, timeoutSec: 0 });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Boots the guests, stops each alone on ACPI (the slowest, for reference), boots them again and
 * closes `host` stopping them all: the time of that close.
 */
async function orderedShutdown(host: Host, vms: BenchVm[]): Promise<{ shutdown: number; slowest: number }> {
  await Promise.all(vms.map((vm) => host.vms.lifecycle.start(vm.id)));
  for (const vm of vms) await bootedTimes(host, vm.id, 1);
  const single: number[] = [];
  for (const vm of vms) {
    const s0 = performance.now();
    await host.vms.lifecycle.stop(vm.id, 60);
    single.push(performance.now() - s0);
  }
  await Promise.all(vms.map((vm) => host.vms.lifecycle.start(vm.id)));
  for (const vm of vms) await bootedTimes(host, vm.id, 2);
  const d0 = performance.now();
  await host.close({ stopGuests: true });
  return { shutdown: performance.now() - d0, slowest: Math.max(...single) };
}

async function main(): Promise<void> {
  if (!fs.existsSync(FIXTURE.kernel)) throw new Error('build the guest first: bash test/fixtures/build-guest.sh');
  // BENCH_ONLY=start,crash runs just those groups
  const groups: Record<string, () => Promise<Row | Row[]>> = {
    start: startLatency,
    crash: crashToRunning,
    panic: panicToRunning,
    guests: tenGuests,
    stats: statsCost,
    boot: bootAndShutdown,
    consoles: consoleRows,
    list: listRows,
    auth: authRows,
    fuzz: fuzzRow,
    portable: portableRows,
    shares: shareRows,
    network: networkRows,
    migration: migrationRows,
    ha: haRows,
    snapshot: snapshotRows,
    cluster: clusterRows,
  };
  const only = process.env.BENCH_ONLY?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = only?.filter((g) => !(g in groups)) ?? [];
  if (unknown.length) throw new Error(`BENCH_ONLY: unknown group ${unknown.join(', ')} (known: ${Object.keys(groups).join(', ')})`);
  const rows: Row[] = [];
  for (const [name, run] of Object.entries(groups)) {
    if (only && !only.includes(name)) continue;
    try {
      rows.push(...[await run()].flat());
    } catch (err) {
      // one broken group must not cost the rows of the others
      process.exitCode = 1;
      console.error(err);
      rows.push({
        name: `${name}: failed`,
        value: String((err as Error).message ?? err).slice(0, 120),
        floor: '-',
        target: '-',
        ok: false,
      });
    }
  }
  printTable(rows);
}

void main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
