// Shared folder read throughput in the guest (virtiofs and 9p): a VM Corral runs with two
// shares, beside a bare QEMU started by hand in the same run with the same options (the argv
// Corral builds for it, virtiofsd spawned by hand with the same options). The guest reads a
// 64 MiB file with dd after dropping its caches, timed by busybox time (10 ms resolution).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONFIG_DEFAULTS, type SharedFolder } from '../../electron/core/api/contract';
import { mountCommand } from '../../electron/core/api/rules';
import { Host } from '../../electron/core/host/host';
import { buildArgv } from '../../electron/core/qemu/argv';
import { shareSocket, shareSupport } from '../../electron/core/qemu/virtiofsd';
import { vmFiles } from '../../electron/core/paths';
import { BOOT_MS, FIXTURE, FIXTURE_DIR, tempDir } from '../helpers';
import type { Row } from './lib';

const FILE_MIB = 64;
const READS = Number(process.env.BENCH_SHARE_READS ?? 3);

/** A shell on the guest's serial port: send a line, wait for what it prints up to a marker. */
export interface Shell {
  run(line: string, timeoutMs?: number): Promise<string>;
}

export async function until(what: string, fn: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export function shellOn(read: () => string, write: (s: string) => void): Shell {
  let n = 0;
  let ready = false;
  return {
    async run(line, timeoutMs = 120_000) {
      // the banner comes before the shell on the serial port: knock until it prompts
      for (let i = 0; !ready; i++) {
        const from = read().length;
        write('\n');
        await sleep(2000);
        ready = read().slice(from).includes('guest# ');
        if (i > 60) throw new Error('the guest shell never prompted');
      }
      const marker = `BENCH-${++n}-DONE`;
      const from = read().length;
      write(`${line}; echo ${marker.replace('-DONE', '')}-''DONE\n`);
      await until(marker, () => read().slice(from).includes(marker), timeoutMs);
      const out = read().slice(from);
      return out.slice(0, out.indexOf(marker));
    },
  };
}

/** busybox time's "real 0m 1.23s" after reading the file → MB/s (10^6 bytes). */
function readRate(out: string): number {
  const m = /real\s+(\d+)m\s*([\d.]+)s/.exec(out);
  if (!m) throw new Error(`no time figure in ${JSON.stringify(out.slice(-300))}`);
  return (FILE_MIB * 1024 * 1024) / (Number(m[1]) * 60 + Number(m[2])) / 1e6;
}

/** Mounts both shares, then the median of READS cold reads of each. */
async function measure(shell: Shell, shares: Array<SharedFolder & { mechanism: 'virtiofs' | '9p' }>): Promise<Record<string, number>> {
  for (const s of shares) {
    const out = await shell.run(mountCommand(s.tag, s.mechanism, s.readOnly));
    if (/mount: |can't|No such device/.test(out)) throw new Error(`mount ${s.tag}: ${out.trim()}`);
  }
  const result: Record<string, number> = {};
  for (const s of shares) {
    const rates: number[] = [];
    for (let i = 0; i < READS; i++) {
      rates.push(readRate(await shell.run(`sync; echo 3 > /proc/sys/vm/drop_caches; time dd if=/mnt/${s.tag}/big of=/dev/null bs=1M`)));
    }
    rates.sort((a, b) => a - b);
    result[s.mechanism] = rates[Math.floor(rates.length / 2)]!;
  }
  return result;
}

export async function shareRows(): Promise<Row[]> {
  const support = shareSupport();
  if (!support.virtiofsd) throw new Error(`virtiofs unavailable here: ${support.why}`);
  const dataDir = tempDir('corral-bench-');
  const folders = tempDir('corral-bench-shares-');
  fs.chmodSync(folders, 0o755);
  const shares: Array<SharedFolder & { mechanism: 'virtiofs' | '9p' }> = [];
  for (const mechanism of ['virtiofs', '9p'] as const) {
    const dir = path.join(folders, mechanism);
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'big'), Buffer.alloc(FILE_MIB * 1024 * 1024, 7), { mode: 0o644 });
    shares.push({ path: dir, tag: mechanism === 'virtiofs' ? 'vfs' : 'p9', readOnly: true, via: mechanism, mechanism });
  }
  const env = { ...process.env, CORRAL_ACCEL: 'tcg' };
  const host = await Host.start({ dataDir, kind: 'bench', env });
  const helpers: ChildProcess[] = [];
  let bare: ChildProcess | null = null;
  try {
    host.vms.pools.add('fixtures', FIXTURE_DIR);
    const config = { ...CONFIG_DEFAULTS, memoryMiB: 256, kernel: FIXTURE.kernel, initrd: FIXTURE.initrd, append: 'console=ttyS0 quiet' };
    const vm = await host.vms.service.create({ ...config, name: 'shares', disk: null, shares: shares.map(({ mechanism: _m, ...s }) => s) });
    await host.vms.lifecycle.start(vm.id);
    const files = vmFiles(host.layout, vm.id);
    const log = () => (fs.existsSync(files.serialLog) ? fs.readFileSync(files.serialLog, 'latin1') : '');
    await until('the guest to boot', () => log().includes(FIXTURE.banner), BOOT_MS);
    const link = host.vms.registry.get(vm.id)!.machine.serial!;
    const corral = await measure(
      shellOn(log, (s) => link.write(Buffer.from(s))),
      shares,
    );
    await host.vms.lifecycle.stop(vm.id, 0);

    // the same QEMU options by hand: Corral's argv for this VM, its sockets moved aside, and
    // virtiofsd spawned here with the options Corral gives it
    const byHand = path.join(dataDir, 'by-hand');
    fs.mkdirSync(byHand, { mode: 0o700 });
    const handFiles = {
      ...files,
      runDir: byHand,
      dir: byHand,
      pidFile: path.join(byHand, 'qemu.pid'),
      qmpSocket: path.join(byHand, 'qmp.sock'),
      serialSocket: path.join(byHand, 'serial.sock'),
      serialLog: path.join(byHand, 'serial.log'),
      vncSocket: path.join(byHand, 'vnc.sock'),
      qgaSocket: path.join(byHand, 'qga.sock'),
    };
    const vfs = shares[0]!;
    const sock = shareSocket(handFiles, 0);
    helpers.push(
      spawn(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          '--',
          '/bin/sh',
          '-c',
          'mount --bind -- "$1" "$1" && mount -o remount,bind,ro -- "$1" "$1" && shift && exec "$@"',
          'by-hand',
          vfs.path,
          support.virtiofsd,
          `--socket-path=${sock}`,
          '-o',
          `source=${vfs.path}`,
          '-o',
          'sandbox=namespace',
          '-o',
          'cache=auto',
          '-o',
          'log_level=warn',
        ],
        { stdio: 'ignore' },
      ),
    );
    await until('virtiofsd by hand', () => fs.existsSync(sock), 30_000);
    const rec = host.vms.service.get(vm.id);
    // not held at -S: nothing will send cont
    const argv = buildArgv(
      { id: vm.id, name: vm.name, config: rec.config, files: handFiles, shareVia: ['virtiofs', '9p'] },
      host.caps,
    ).filter((a) => a !== '-S');
    bare = spawn('qemu-system-x86_64', argv, { stdio: 'ignore' });
    await until('the serial socket', () => fs.existsSync(handFiles.serialSocket), 30_000);
    let text = '';
    const conn = net.createConnection(handFiles.serialSocket);
    conn.on('data', (d: Buffer) => (text += d.toString('latin1')));
    await until('the bare guest to boot', () => text.includes(FIXTURE.banner), BOOT_MS);
    await sleep(1000);
    const floor = await measure(
      shellOn(
        () => text,
        (s) => conn.write(s),
      ),
      shares,
    );
    conn.destroy();
    const mbs = (x: number) => `${x.toFixed(1)} MB/s`;
    return (['virtiofs', '9p'] as const).map((m) => ({
      name: `shared folder read, ${m} (${FILE_MIB} MiB, cold guest cache, TCG)`,
      value: mbs(corral[m]!),
      floor: `${mbs(floor[m]!)} (bare QEMU, same options by hand)`,
      target: `≥ 0.9 × floor = ${mbs(0.9 * floor[m]!)}`,
      ok: corral[m]! >= 0.9 * floor[m]!,
    }));
  } finally {
    bare?.kill('SIGKILL');
    for (const h of helpers) h.kill('SIGKILL');
    await host.close({ stopGuests: true, timeoutSec: 0 });
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(folders, { recursive: true, force: true });
  }
}
