// Export and import throughput of a VM's disk beside the floor: `qemu-img convert -O qcow2`
// then `tar -cf` of the same disk for an export, `tar -xf` of that tar for an import (the
// import also hashes and checks; the floor does neither). Target: at least 0.8x the floor.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Host } from '../../electron/core/host/host';
import { FIXTURE, tempDir } from '../helpers';
import type { Row } from './lib';

const MIB = Number(process.env.BENCH_PORTABLE_MIB ?? 512);

const rate = (bytes: number, ms: number) => (bytes / (1 << 20) / (ms / 1000)).toFixed(1);

function timed(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

export async function portableRows(): Promise<Row[]> {
  const dataDir = tempDir('corral-bench-portable-');
  const host = await Host.start({ dataDir, kind: 'test', env: { ...process.env, CORRAL_ACCEL: 'tcg' } });
  let id = 1;
  const call = async <T>(method: string, args: unknown): Promise<T> => {
    const r = await host.dispatcher.handle(
      host.session('bench', () => undefined),
      { id: id++, method, args },
    );
    if ('error' in r) throw new Error(r.error.message);
    return r.result as T;
  };
  try {
    const images = path.join(dataDir, 'images');
    const disk = path.join(images, 'data.raw');
    // incompressible data: the copy is the work, not zero detection
    execFileSync('sh', ['-c', `head -c ${MIB << 20} /dev/urandom > '${disk}'`]);
    await call('pool.add', { name: 'fixtures', path: path.dirname(FIXTURE.kernel) });
    await call('vm.create', {
      name: 'bench',
      memoryMiB: 256,
      kernel: FIXTURE.kernel,
      initrd: FIXTURE.initrd,
      disk: { image: disk, format: 'raw' },
    });
    const bytes = MIB << 20;

    const floorDir = fs.mkdtempSync(path.join(dataDir, 'floor-'));
    const floorExport = timed(() => {
      execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', disk, path.join(floorDir, 'disk0.qcow2')]);
      execFileSync('tar', ['-cf', path.join(floorDir, 'floor.tar'), '-C', floorDir, 'disk0.qcow2']);
    });
    fs.rmSync(path.join(floorDir, 'disk0.qcow2'));
    const floorImport = timed(() => execFileSync('tar', ['-xf', path.join(floorDir, 'floor.tar'), '-C', floorDir]));
    fs.rmSync(floorDir, { recursive: true, force: true });

    const bundle = path.join(images, 'bench.tar');
    let t0 = performance.now();
    await call('vm.export', { vm: 'bench', file: bundle });
    const exportMs = performance.now() - t0;
    t0 = performance.now();
    await call('vm.import', { file: bundle, name: 'bench-2' });
    const importMs = performance.now() - t0;

    const row = (name: string, ms: number, floorMs: number): Row => ({
      name: `${name} of a ${MIB} MiB disk (MB/s)`,
      value: `${rate(bytes, ms)} MB/s`,
      floor: `${rate(bytes, floorMs)} MB/s`,
      target: '≥ 0.8 × floor',
      ok: floorMs / ms >= 0.8,
    });
    return [row('vm export', exportMs, floorExport), row('vm import', importMs, floorImport)];
  } finally {
    await host.close({ stopGuests: true, timeoutSec: 0 });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
