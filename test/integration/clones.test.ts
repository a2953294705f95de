// Full and linked clones on real QEMU: both boot with the source's disk data and their own MAC;
// the base of a linked clone cannot be deleted while a clone stands on it, and goes with its
// last dependent; a running VM is refused.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MS } from '../helpers';
import { sha256 } from './bundle-files';
import { bootToShell, guestMac, readMark, writeMark } from './guest-shell';
import { guestArgs, TestHost } from './host-harness';

let t: TestHost;
let src = '';
let mark = { sha: '', text: '' };

beforeAll(async () => {
  t = await TestHost.start();
  const vm = await t.call('vm.create', guestArgs('origin', { disk: { size: 64 * 1024 * 1024 } }));
  src = vm.id;
  await bootToShell(t, src);
  await writeMark(t, src, 'corral-clone-mark');
  mark = await readMark(t, src);
  expect(mark.text).toBe('corral-clone-mark');
}, 2 * BOOT_MS);
afterAll(async () => {
  for (const vm of await t.call('vm.list', {})) if (vm.pid) process.kill(vm.pid, 'SIGKILL');
  await t.close();
});

describe('clones', () => {
  it('refuses to clone a running VM, leaving nothing', async () => {
    await expect(t.call('vm.clone', { vm: 'origin', name: 'early' })).rejects.toMatchObject({
      api: { code: 'conflict', field: 'vm', message: expect.stringMatching(/is running: stop it to clone it/) },
    });
    expect((await t.call('vm.list', {})).map((v) => v.name)).toEqual(['origin']);
    await t.call('vm.stop', { vm: src, timeoutSec: 60 });
  });

  it('makes a full and a linked clone with new ids and MACs; the linked one stands on a managed base', async () => {
    const origin = await t.call('vm.get', { vm: 'origin' });
    const full = await t.call('vm.clone', { vm: 'origin', name: 'full' });
    const linked = await t.call('vm.clone', { vm: 'origin', name: 'linked', linked: true });
    const macs = [origin, full, linked].map((v) => v.config.nics[0]!.mac);
    expect(new Set(macs).size).toBe(3);
    expect(new Set([origin.id, full.id, linked.id]).size).toBe(3);
    expect(full.config.disks[0]!.base).toBeUndefined();
    const base = linked.config.disks[0]!.base!;
    expect(base).toMatch(/\/images\/bases\/[0-9a-f]+\.qcow2$/);
    // the source's own disk became the base: it now stands on it too, at its old path
    const now = await t.call('vm.get', { vm: 'origin' });
    expect(now.config.disks[0]).toMatchObject({ path: origin.config.disks[0]!.path, base });
    expect((fs.statSync(base).mode & 0o777).toString(8)).toBe('400');
    expect(await t.call('base.list', {})).toEqual([expect.objectContaining({ path: base, dependents: ['linked', 'origin'] })]);
    // the progress of each copy went to the caller
    expect(t.events.some((e) => e.event === 'job.progress' && (e.payload as { op: string }).op === 'clone')).toBe(true);
  });

  it(
    'both clones boot with the data of the source and their own MAC',
    async () => {
      const base = (await t.call('base.list', {}))[0]!.path;
      const baseHash = sha256(fs.readFileSync(base));
      for (const name of ['full', 'linked']) {
        const vm = await t.call('vm.get', { vm: name });
        await bootToShell(t, vm.id);
        expect(await readMark(t, vm.id)).toEqual(mark);
        expect(await guestMac(t, vm.id)).toBe(vm.config.nics[0]!.mac);
        // the linked clone writes into its overlay: the source and the base stay as they were
        await writeMark(t, vm.id, `changed-in-${name}`);
        await t.call('vm.stop', { vm: vm.id, timeoutSec: 60 });
      }
      // the linked clone wrote into its overlay only: the base (the source's data) is as it was
      expect(sha256(fs.readFileSync(base))).toBe(baseHash);
    },
    4 * BOOT_MS,
  );

  it('the base cannot be deleted while a clone stands on it, and goes with its last dependent', async () => {
    const [{ path: base }] = await t.call('base.list', {});
    await expect(t.call('base.delete', { path: base! })).rejects.toMatchObject({
      api: { code: 'conflict', message: expect.stringMatching(/has linked clones: "linked", "origin"; delete them first/) },
    });
    expect(fs.existsSync(base!)).toBe(true);
    // a base is never a disk of its own
    await expect(t.call('vm.create', { name: 'thief', disk: { image: base! } })).rejects.toThrow(/managed base of linked clones/);
    await t.call('vm.delete', { vm: 'linked' });
    expect(fs.existsSync(base!)).toBe(true);
    await t.call('vm.delete', { vm: 'origin' });
    expect(fs.existsSync(base!)).toBe(false);
    expect(await t.call('base.list', {})).toEqual([]);
  });
});
