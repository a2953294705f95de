// Export and import throughput of a VM's disk beside the floor, the same work done by the
// standard tools: an export flattens the disk (`qemu-img convert -O qcow2`), archives it
// (`tar -cf`), hashes it for the manifest (`sha256sum`) and makes the file durable before it
// is renamed into place (`sync FILE`, an fsync); an import unpacks (`tar -xf`) and checks the
// hash (`sha256sum`). The row names say what the floor includes. Target: at least 0.8x the floor.
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
    const flat = path.join(floorDir, 'disk0.qcow2');
    const floorTar = path.join(floorDir, 'floor.tar');
    const floorExport = timed(() => {
      execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', disk, flat]);
      execFileSync('tar', ['-cf', floorTar, '-C', floorDir, 'disk0.qcow2']);
      execFileSync('sha256sum', [flat]);
      execFileSync('sync', [floorTar]);
    });
    fs.rmSync(flat);
    const floorImport = timed(() => {
      execFileSync('tar', ['-xf', floorTar, '-C', floorDir]);
      execFileSync('sha256sum', [flat]);
    });
    fs.rmSync(floorDir, { recursive: true, force: true });

    const bundle = path.join(images, 'bench.tar');
    let t0 = performance.now();
    await call('vm.export', { vm: 'bench', file: bundle });
    const exportMs = performance.now() - t0;
    t0 = performance.now();
    await call('vm.import', { file: bundle, name: 'bench-2' });
    const importMs = performance.now() - t0;

    const row = (name: string, floorTools: string, ms: number, floorMs: number): Row => ({
      name: `${name} of a ${MIB} MiB disk (MB/s; floor: ${floorTools})`,
      value: `${rate(bytes, ms)} MB/s`,
      floor: `${rate(bytes, floorMs)} MB/s`,
      target: '≥ 0.8 × floor',
      ok: floorMs / ms >= 0.8,
    });
    return [
      row('vm export', 'qemu-img convert + tar + sha256sum + fsync', exportMs, floorExport),
      row('vm import', 'tar -x + sha256sum', importMs, floorImport),
    ];
  } finally {
    await host.close({ stopGuests: true, timeoutSec: 0 });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
