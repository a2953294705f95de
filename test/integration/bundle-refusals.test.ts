// Bad bundles and OVAs against a real host: each is refused with an error naming what is
// wrong, and leaves nothing behind (no VM, no staged file, no disk). A cancelled export and
// a cancelled import leave nothing either.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers';
import { makeOva, rawHeader, sha256, tarEntries, writeTar } from './bundle-files';
import { guestArgs, TestHost } from './host-harness';

let t: TestHost;
let images = '';
let good = '';
let entries: Array<[string, Buffer]> = [];

/** Everything in the default pool and the VM folders: an import must leave these as they were. */
const leftovers = () => [...fs.readdirSync(images), ...fs.readdirSync(path.join(t.dataDir, 'vms'))].sort();

beforeAll(async () => {
  t = await TestHost.start();
  images = path.join(t.dataDir, 'images');
  await t.call('vm.create', guestArgs('sample', { disk: { size: 16 * 1024 * 1024 } }));
  good = path.join(images, 'sample.tar');
  await t.call('vm.export', { vm: 'sample', file: good });
  entries = tarEntries(good);
});
afterAll(() => t.close());

const manifestOf = () => JSON.parse(entries[0]![1].toString()) as Record<string, unknown> & { disks: Array<Record<string, unknown>> };
const withManifest = (m: unknown): Array<[string, Buffer]> => [['manifest.json', Buffer.from(JSON.stringify(m))], ...entries.slice(1)];

async function refused(name: string, build: (file: string) => void, why: RegExp): Promise<void> {
  const file = path.join(images, name);
  build(file);
  const before = leftovers();
  const vms = (await t.call('vm.list', {})).length;
  await expect(t.call('vm.import', { file, name: 'imported' })).rejects.toMatchObject({
    api: { field: 'file', message: expect.stringMatching(why) },
  });
  expect((await t.call('vm.list', {})).length).toBe(vms);
  expect(leftovers()).toEqual(before);
  fs.rmSync(file);
}

describe('bad bundles are refused and leave nothing behind', () => {
  it('the good bundle imports (the control case)', async () => {
    const vm = await t.call('vm.import', { file: good, name: 'control' });
    expect(vm.config.disks).toHaveLength(1);
    await t.call('vm.delete', { vm: 'control' });
  });

  it('a checksum mismatch', () =>
    refused(
      'altered.tar',
      (f) => {
        const disk = Buffer.from(entries[1]![1]);
        disk[disk.length - 1] ^= 0xff;
        writeTar(f, [entries[0]!, [entries[1]![0], disk], ...entries.slice(2)]);
      },
      /"disk0.qcow2" does not match its SHA-256/,
    ));

  it('a truncated file', () =>
    refused(
      'cut.tar',
      (f) => fs.writeFileSync(f, fs.readFileSync(good).subarray(0, 2048 + 1000)),
      /truncated|declares \d+ bytes of files but the archive has only/,
    ));

  it('an entry with ..', () =>
    refused('dotdot.tar', (f) => writeTar(f, [...entries, ['../../escape', Buffer.from('x')]]), /points outside the archive/));

  it('an absolute path', () =>
    refused('abs.tar', (f) => writeTar(f, [...entries, { raw: rawHeader('/etc/cron.d/x', '0') }]), /absolute path/));

  it('a symlink and a device', async () => {
    await refused('link.tar', (f) => writeTar(f, [...entries, { raw: rawHeader('evil', '2') }]), /symbolic link; only plain files/);
    await refused('dev.tar', (f) => writeTar(f, [...entries, { raw: rawHeader('evil', '4') }]), /block device/);
  });

  it('a manifest of an unknown future version', () =>
    refused(
      'future.tar',
      (f) => writeTar(f, withManifest({ ...manifestOf(), version: 3 })),
      /format version 3; this Corral reads versions up to 2/,
    ));

  it('an absurd declared size', async () => {
    const huge = { ...manifestOf(), disks: [{ ...manifestOf().disks[0], size: 2 ** 50 }] };
    await refused('huge.tar', (f) => writeTar(f, withManifest(huge)), /disks\.0\.size: is larger than Corral accepts/);
    const big = { ...manifestOf(), disks: [{ ...manifestOf().disks[0], size: 2 ** 40 }] };
    await refused('big.tar', (f) => writeTar(f, withManifest(big)), /declares \d+ bytes of files but the archive has only \d+/);
  });

  it('a disk with a backing file (a qcow2 that would open a host file)', () =>
    refused(
      'backing.tar',
      (f) => {
        const img = path.join(t.dataDir, 'evil.qcow2');
        execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', '/etc/passwd', '-F', 'raw', img, '16M']);
        const disk = fs.readFileSync(img);
        fs.rmSync(img);
        const m = manifestOf();
        m.disks = [{ ...m.disks[0], size: disk.length, sha256: sha256(disk) }];
        writeTar(f, [
          ['manifest.json', Buffer.from(JSON.stringify(m))],
          ['disk0.qcow2', disk],
        ]);
      },
      /has a backing file/,
    ));

  it('a UEFI variables file with a backing file', () =>
    refused(
      'vars-backing.tar',
      (f) => {
        const img = path.join(t.dataDir, 'evil-vars.qcow2');
        execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', '/etc/passwd', '-F', 'raw', img, '4M']);
        const vars = fs.readFileSync(img);
        fs.rmSync(img);
        const m = { ...manifestOf(), efiVars: { file: 'efivars.qcow2', size: vars.length, sha256: sha256(vars) } };
        writeTar(f, [...withManifest(m), ['efivars.qcow2', vars]]);
      },
      /the UEFI variables \(efivars.qcow2\): .*has a backing file/,
    ));

  it('an OVF that points outside the archive, and an OVA whose manifest does not match', async () => {
    await refused(
      'outside.ova',
      (f) => makeOva(t.dataDir, f, { name: 'evil', cpus: 1, memoryMiB: 256, mark: 'x', href: '../../etc/shadow' }),
      /outside the archive/,
    );
    await refused(
      'tampered.ova',
      (f) => {
        makeOva(t.dataDir, f, { name: 'tampered', cpus: 1, memoryMiB: 256, mark: 'x' });
        const e = tarEntries(f);
        const disk = Buffer.from(e[2]![1]);
        disk[600] ^= 0xff;
        writeTar(f, [e[0]!, e[1]!, [e[2]![0], disk]]);
      },
      /does not match its SHA256 in the OVA's manifest/,
    );
  });
});

describe('cancel', () => {
  it('a cancelled export and import leave nothing behind', async () => {
    // a disk with 192 MiB of data takes long enough to copy to be cancelled midway
    const img = path.join(images, 'data.raw');
    execFileSync('sh', ['-c', `head -c ${192 << 20} /dev/urandom > '${img}'`]);
    await t.call('vm.create', guestArgs('bulky', { disk: { image: img, format: 'raw' } }));
    const before = leftovers();
    const cancelWhenUnderway = async (job: string) => {
      await waitFor(
        `progress of ${job}`,
        () => t.events.some((e) => e.event === 'job.progress' && (e.payload as { job: string }).job === job),
        60_000,
        5,
      );
      await t.call('job.cancel', { job });
    };
    const exp = t.call('vm.export', { vm: 'bulky', file: path.join(images, 'bulky.tar'), job: 'cx' });
    await cancelWhenUnderway('cx');
    await expect(exp).rejects.toThrow(/export cancelled; nothing was left behind/);
    expect(leftovers()).toEqual(before);
    await t.call('vm.export', { vm: 'bulky', file: path.join(images, 'bulky.tar') });
    const after = leftovers();
    const imp = t.call('vm.import', { file: path.join(images, 'bulky.tar'), name: 'bulky-2', job: 'ci' });
    await cancelWhenUnderway('ci');
    await expect(imp).rejects.toThrow(/import cancelled/);
    expect(leftovers()).toEqual(after);
    expect((await t.call('vm.list', {})).map((v) => v.name)).not.toContain('bulky-2');
    await expect(t.call('job.cancel', { job: 'ci' })).rejects.toMatchObject({ api: { code: 'not-found' } });
  });
});
