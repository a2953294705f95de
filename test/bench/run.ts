// `npm run bench`: measured figures for the targets of the issues, printed as a table.
// Real QEMU (TCG) and a real host; no timed assertions live in the test suite.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Host } from '../../electron/core/host/host';
import { buildArgv } from '../../electron/core/qemu/argv';
import { FIXTURE, tempDir } from '../helpers';

const RUNS = Number(process.env.BENCH_RUNS ?? 12);

interface Row {
  name: string;
  value: string;
  floor: string;
  target: string;
  ok: boolean | null;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

/** Bare QEMU, same argv: spawn until the QMP greeting arrives. The floor for a start. */
async function bareQemuToQmp(argv: string[], qmpSocket: string): Promise<number> {
  fs.rmSync(qmpSocket, { force: true });
  const t0 = performance.now();
  const child = spawn('qemu-system-x86_64', argv, { stdio: 'ignore' });
  try {
    for (;;) {
      const greeted = await new Promise<boolean>((resolve) => {
        const s = net.createConnection(qmpSocket);
        s.once('data', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
      if (greeted) return performance.now() - t0;
      await sleep(1);
    }
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
}

async function startLatency(): Promise<Row> {
  const dataDir = tempDir('corral-bench-');
  const host = await Host.start({ dataDir, kind: 'bench', env: { ...process.env, CORRAL_ACCEL: 'tcg' } });
  try {
    const vm = await host.manager.create({
      name: 'bench', cpus: 1, memoryMiB: 256, disk: null, iso: null,
      kernel: FIXTURE.kernel, initrd: FIXTURE.initrd, append: 'console=ttyS0 quiet', forwards: [], restart: 'never',
    });
    const files = host.manager.filesOf(vm.id);
    const ours: number[] = [];
    const floor: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      await host.manager.start(vm.id);
      ours.push(performance.now() - t0);
      await host.manager.kill(vm.id);
      // the floor, interleaved so both see the same machine load
      const argv = buildArgv({ id: vm.id, name: vm.name, config: vm.config, files: { ...files, pidFile: path.join(files.dir, 'bare.pid'), qmpSocket: path.join(files.runDir, 'bare-qmp.sock'), serialSocket: path.join(files.runDir, 'bare-serial.sock'), serialLog: path.join(files.dir, 'bare-serial.log') } }, host.caps);
      floor.push(await bareQemuToQmp(argv, path.join(files.runDir, 'bare-qmp.sock')));
    }
    const m = median(ours);
    const f = median(floor);
    return { name: `start latency (API start → running, median of ${RUNS})`, value: ms(m), floor: `${ms(f)} (bare QEMU → QMP ready)`, target: `≤ 2 × floor + 20 ms = ${ms(2 * f + 20)}`, ok: m <= 2 * f + 20 };
  } finally {
    await host.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!fs.existsSync(FIXTURE.kernel)) throw new Error('build the guest first: bash test/fixtures/build-guest.sh');
  const rows: Row[] = [];
  rows.push(await startLatency());
  const cols = ['benchmark', 'measured', 'floor', 'target', 'result'];
  const table = [cols, ...rows.map((r) => [r.name, r.value, r.floor, r.target, r.ok === null ? '-' : r.ok ? 'PASS' : 'MISS'])];
  const widths = cols.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  for (const [i, r] of table.entries()) {
    console.log(r.map((c, j) => c.padEnd(widths[j]!)).join(' | '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  }
}

void main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
