// Machines that move, on real QEMU: a VM exported on one data dir and imported into another
// boots with the same disk data (checked inside the guest) and keeps its MAC and TPM state; a
// second import under a new name is a copy with a new MAC; an OVA made with qemu-img and the
// system's tar imports with the OVF's CPUs and memory and boots with its disk.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MS, FIXTURE } from '../helpers';
import { makeOva, tarEntries } from './bundle-files';
import { bootToShell, guestMac, guestRun, readMark, writeMark } from './guest-shell';
import { guestArgs, TestHost } from './host-harness';

let a: TestHost;
let b: TestHost;
let mark = { sha: '', text: '' };
let exported = '';

beforeAll(async () => {
  [a, b] = await Promise.all([TestHost.start(), TestHost.start()]);
});
afterAll(async () => {
  for (const t of [a, b]) {
    for (const vm of await t.call('vm.list', {})) if (vm.pid) process.kill(vm.pid, 'SIGKILL');
    await t.close();
  }
});

describe('export and import', () => {
  it(
    'exports a stopped VM as one bundle: the manifest first, then disks and TPM state',
    async () => {
      const vm = await a.call('vm.create', guestArgs('traveller', { disk: { size: 64 * 1024 * 1024 }, tpm: true }));
      await bootToShell(a, vm.id);
      await writeMark(a, vm.id, 'corral-travel-mark');
      mark = await readMark(a, vm.id);
      expect(mark.text).toBe('corral-travel-mark');
      await expect(a.call('vm.export', { vm: vm.id, file: path.join(a.dataDir, 'images', 'early.tar') })).rejects.toThrow(
        /is running: stop it to export it/,
      );
      await a.call('vm.stop', { vm: vm.id, timeoutSec: 60 });
      exported = path.join(a.dataDir, 'images', 'traveller.tar');
      const r = await a.call('vm.export', { vm: vm.id, file: exported, job: 'exp1' });
      expect(r).toEqual({ file: exported, size: fs.statSync(exported).size });
      const names = tarEntries(exported).map(([n]) => n);
      expect(names[0]).toBe('manifest.json');
      expect(names).toContain('disk0.qcow2');
      expect(names).toContain('tpm/tpm2-00.permall');
      const manifest = JSON.parse(tarEntries(exported)[0]![1].toString()) as { version: number; disks: Array<{ virtualSize: number }> };
      expect(manifest).toMatchObject({ version: 1, machineType: vm.config.machineType, cpuModel: vm.config.cpuModel, tpm: true });
      expect(manifest.disks[0]!.virtualSize).toBe(64 * 1024 * 1024);
      const progress = a.events
        .filter((e) => e.event === 'job.progress')
        .map((e) => e.payload as { job: string; done: number; total: number });
      expect(progress.some((p) => p.job === 'exp1' && p.done === p.total && p.total > 0)).toBe(true);
      // where a bundle may go: a new file in a pool, never over an existing one
      await expect(a.call('vm.export', { vm: vm.id, file: exported })).rejects.toThrow(/already exists/);
      await expect(a.call('vm.export', { vm: vm.id, file: '/tmp/outside.tar' })).rejects.toMatchObject({ api: { field: 'file' } });
    },
    2 * BOOT_MS,
  );

  it(
    'imports it on another data dir: same disk data in the guest, same MAC, same TPM state',
    async () => {
      const src = await a.call('vm.get', { vm: 'traveller' });
      const copy = path.join(b.dataDir, 'images', 'traveller.tar');
      fs.copyFileSync(exported, copy);
      const vm = await b.call('vm.import', { file: copy });
      expect(vm).toMatchObject({ name: 'traveller', config: { nics: src.config.nics, tpm: true, machineType: src.config.machineType } });
      expect(vm.id).not.toBe(src.id);
      const tpmState = (dir: string, id: string) => fs.readFileSync(path.join(dir, 'vms', id, 'tpm', 'tpm2-00.permall'));
      expect(tpmState(b.dataDir, vm.id).equals(tpmState(a.dataDir, src.id))).toBe(true);
      await bootToShell(b, vm.id);
      expect(await readMark(b, vm.id)).toEqual(mark);
      expect(await guestMac(b, vm.id)).toBe(src.config.nics[0]!.mac);
      await b.call('vm.stop', { vm: vm.id, timeoutSec: 60 });
      // a second import under a new name is a copy: a new MAC
      const second = await b.call('vm.import', { file: copy, name: 'traveller-2' });
      expect(second.config.nics[0]!.mac).not.toBe(src.config.nics[0]!.mac);
      await expect(b.call('vm.import', { file: copy })).rejects.toMatchObject({ api: { code: 'conflict', field: 'name' } });
    },
    2 * BOOT_MS,
  );

  it(
    'imports an OVA (stream-optimized VMDK, OVF, SHA-256 manifest): CPUs and memory from the OVF; it boots with its disk',
    async () => {
      const ova = path.join(b.dataDir, 'images', 'appliance.ova');
      makeOva(b.dataDir, ova, { name: 'appliance', cpus: 2, memoryMiB: 384, mark: 'corral-ova-mark' });
      const vm = await b.call('vm.import', { file: ova });
      expect(vm.config).toMatchObject({ cpus: 2, memoryMiB: 384, firmware: 'bios' });
      expect(vm.config.disks).toEqual([expect.objectContaining({ format: 'qcow2', owned: true })]);
      expect(vm.diskSizes).toEqual([32 * 1024 * 1024]);
      // the appliance's own kernel is not the test guest's: boot the tiny guest with its disk
      await b.call('vm.update', { vm: vm.id, kernel: FIXTURE.kernel, initrd: FIXTURE.initrd, append: 'console=ttyS0 quiet' });
      await bootToShell(b, vm.id);
      expect((await readMark(b, vm.id)).text).toBe('corral-ova-mark');
      expect(await guestRun(b, vm.id, 'nproc')).toBe('2');
      await b.call('vm.stop', { vm: vm.id, timeoutSec: 60 });
    },
    2 * BOOT_MS,
  );
});
