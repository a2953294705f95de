// Storage pools are the only doors from a VM config to host files: every path that is not a
// regular file inside a pool is refused as a disk, an ISO, a kernel and an initrd, through the
// API of a real host (real SQLite, real files, real qemu-img), and nothing is saved.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArgsIn } from '../../electron/core/api/contract';
import { tempDir } from '../helpers';
import { TestHost } from './host-harness';

let t: TestHost;
let pool: string;
let other: { id: string; disk: string };
const cleanups: Array<() => void> = [];

beforeAll(async () => {
  t = await TestHost.start();
  pool = tempDir('corral-pool-');
  await t.call('pool.add', { name: 'mine', path: pool });
  const vm = await t.call('vm.create', { name: 'other', disk: { size: 16 * 1024 * 1024 } });
  other = { id: vm.id, disk: vm.config.disks[0]!.path };
});

afterAll(async () => {
  cleanups.forEach((fn) => fn());
  await t.close();
});

/** Every kind of file that must never reach a VM, and what the error must say about it. */
function refusedPaths(): Array<[string, string, RegExp]> {
  const data = fs.realpathSync(t.dataDir);
  const fifo = path.join(pool, 'fifo.img');
  execFileSync('mkfifo', [fifo]);
  const sockPath = path.join(pool, 'sock.img');
  const srv = net.createServer().listen(sockPath);
  cleanups.push(() => srv.close());
  const dir = path.join(pool, 'dir.iso');
  fs.mkdirSync(dir);
  const link = path.join(pool, 'shadow.iso');
  fs.symlinkSync('/etc/shadow', link);
  const partial = path.join(pool, '.upload-0123456789ab');
  fs.writeFileSync(partial, Buffer.alloc(4096));
  const outside = path.join(tempDir(), 'outside.iso');
  fs.writeFileSync(outside, Buffer.alloc(1024 * 1024));
  // a hard link in the pool to a file outside it (temp dirs share a file system)
  const hard = path.join(pool, 'hard.iso');
  fs.linkSync(outside, hard);
  // a file in another VM's own dir (its logs live there)
  const otherLog = path.join(data, 'vms', other.id, 'serial.log');
  fs.writeFileSync(otherLog, 'secret');
  const list: Array<[string, string, RegExp]> = [
    ['/etc/shadow', 'a host file outside the pools', /outside the storage pools/],
    ['/etc/passwd', 'a host file outside the pools', /outside the storage pools/],
    [outside, 'a file outside the pools', /outside the storage pools.*corral pool add/],
    ['/proc/self/environ', 'a /proc file', /host system file in \/proc/],
    ['/sys/kernel/uevent_seqnum', 'a /sys file', /host system file in \/sys/],
    ['/dev/null', 'a character device', /host system file in \/dev/],
    [path.join(data, 'corral.db'), "Corral's database", /Corral's own files/],
    [path.join(data, 'corral.db-wal'), "Corral's database log", /Corral's own files|no such file/],
    [path.join(data, 'host.lock'), "Corral's lock", /Corral's own files/],
    [otherLog, "another VM's file", /belongs to another VM/],
    [other.disk, "another VM's disk", /disk of "other"/],
    [fifo, 'a FIFO in a pool', /a FIFO, not a regular file/],
    [sockPath, 'a socket in a pool', /a socket, not a regular file/],
    [dir, 'a directory in a pool', /a directory, not a regular file/],
    [link, 'a symlink in a pool to /etc/shadow', /leads to \/etc\/shadow/],
    [hard, 'a hard link in a pool to a file outside it', /other hard link/],
    [partial, 'an upload still in progress', /upload in progress/],
  ];
  if (fs.existsSync('/dev/loop0')) list.push(['/dev/loop0', 'a block device', /host system file in \/dev/]);
  return list;
}

const FIELDS = ['iso', 'kernel', 'initrd', 'disk.image'] as const;

function createArgs(field: (typeof FIELDS)[number], file: string): ArgsIn<'vm.create'> {
  const name = `probe-${field}`;
  if (field === 'disk.image') return { name, disk: { image: file, format: 'raw' } };
  // an initrd needs a kernel: a fine one from the pool, so only the initrd is at fault
  if (field === 'initrd') return { name, kernel: path.join(pool, 'good.bin'), initrd: file };
  return { name, [field]: file };
}

describe('files outside the pools are refused', () => {
  let cases: Array<[string, string, RegExp]>;
  beforeAll(() => {
    fs.writeFileSync(path.join(pool, 'good.bin'), Buffer.alloc(4096));
    cases = refusedPaths();
  });

  it.each(FIELDS)('as %s at create, naming the field, saving nothing', async (field) => {
    for (const [file, what, why] of cases) {
      const err = await t.call('vm.create', createArgs(field, file)).then(
        () => null,
        (e: { api: { field?: string; message: string } }) => e.api,
      );
      expect(err, `${what} (${file}) as ${field}`).not.toBeNull();
      expect(err!.field, `${what} as ${field}: ${err!.message}`).toBe(field);
      expect(err!.message, `${what} as ${field}`).toMatch(why);
    }
    expect((await t.call('vm.list', {})).map((v) => v.name)).toEqual(['other']);
  });

  it.each(['iso', 'kernel'] as const)('as %s in an edit, leaving the config as it was', async (field) => {
    const before = await t.call('vm.get', { vm: 'other' });
    for (const [file, what, why] of cases) {
      await expect(t.call('vm.update', { vm: 'other', [field]: file }), `${what} as ${field}`).rejects.toMatchObject({
        api: { field, message: expect.stringMatching(why) },
      });
    }
    const after = await t.call('vm.get', { vm: 'other' });
    expect(after.configVersion).toBe(before.configVersion);
  });

  it('accepts a file in a pool, stored by its real path (a symlink inside the pool is followed)', async () => {
    const iso = path.join(pool, 'installer.iso');
    const image = Buffer.alloc(64 * 1024);
    image.write('CD001', 0x8001, 'latin1'); // an ISO 9660 volume descriptor
    fs.writeFileSync(iso, image);
    const alias = path.join(pool, 'latest.iso');
    fs.symlinkSync('installer.iso', alias);
    const vm = await t.call('vm.update', { vm: 'other', iso: alias });
    expect(vm.config.iso).toBe(fs.realpathSync(iso));
    await t.call('vm.update', { vm: 'other', iso: null });
  });
});

describe('at start', () => {
  it('a file swapped for a symlink out of the pool after it was saved is refused', async () => {
    const kernel = path.join(pool, 'swapped-kernel');
    fs.writeFileSync(kernel, Buffer.alloc(4096));
    await t.call('vm.create', { name: 'swapped', kernel });
    fs.rmSync(kernel);
    fs.symlinkSync('/etc/shadow', kernel);
    await expect(t.call('vm.start', { vm: 'swapped' })).rejects.toMatchObject({
      api: { field: 'kernel', message: expect.stringMatching(/leads to \/etc\/shadow/) },
    });
    expect((await t.call('vm.get', { vm: 'swapped' })).state).toBe('stopped');
    await t.call('vm.delete', { vm: 'swapped' });
  });
});

describe('disks Corral did not create', () => {
  it('are never grown', async () => {
    const img = path.join(pool, 'brought.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '16M']);
    const before = fs.statSync(img).size;
    await t.call('vm.create', { name: 'brought', disk: { image: img } });
    await expect(t.call('vm.resizeDisk', { vm: 'brought', size: 64 * 1024 * 1024 })).rejects.toMatchObject({
      api: { code: 'invalid-argument', field: 'disk', message: expect.stringMatching(/not created by Corral/) },
    });
    expect(fs.statSync(img).size).toBe(before);
    expect(execFileSync('qemu-img', ['info', '--output=json', img]).toString()).toContain('"virtual-size": 16777216');
    // and stay when their VM goes
    await t.call('vm.delete', { vm: 'brought' });
    expect(fs.existsSync(img)).toBe(true);
  });

  it('while a disk Corral created grows', async () => {
    const vm = await t.call('vm.resizeDisk', { vm: 'other', size: 32 * 1024 * 1024 });
    expect(vm.diskSizes[0]).toBe(32 * 1024 * 1024);
  });
});

describe('pools themselves', () => {
  it.each([
    ['/', /root directory/],
    ['/proc', /cannot be a pool/],
    ['/sys', /cannot be a pool/],
    ['/dev', /cannot be a pool/],
    ['/etc', /cannot be a pool/],
    ['/etc/ssl', /in \/etc, which cannot be a pool/],
  ])('%s is refused', async (dir, why) => {
    await expect(t.call('pool.add', { name: 'x', path: dir })).rejects.toMatchObject({
      api: { field: 'path', message: expect.stringMatching(why) },
    });
  });

  it("may not hold or lie in Corral's data dir", async () => {
    const data = fs.realpathSync(t.dataDir);
    for (const dir of [data, path.dirname(data), path.join(data, 'vms'), path.join(data, 'images')]) {
      await expect(t.call('pool.add', { name: 'x', path: dir }), dir).rejects.toMatchObject({
        api: { field: 'path', message: expect.stringMatching(/data dir/) },
      });
    }
    // a symlink to it is judged by where it leads
    const link = path.join(tempDir(), 'innocent');
    fs.symlinkSync(data, link);
    await expect(t.call('pool.add', { name: 'x', path: link })).rejects.toMatchObject({ api: { field: 'path' } });
    expect((await t.call('pool.list', {})).map((p) => p.name)).toEqual(['default', 'fixtures', 'mine']);
  });

  it('names are checked, unique, and the default pool stays', async () => {
    await expect(t.call('pool.add', { name: '../x', path: tempDir() })).rejects.toMatchObject({ api: { field: 'name' } });
    await expect(t.call('pool.add', { name: 'MINE', path: tempDir() })).rejects.toMatchObject({ api: { field: 'name' } });
    await expect(t.call('pool.add', { name: 'again', path: pool })).rejects.toMatchObject({ api: { field: 'path' } });
    await expect(t.call('pool.remove', { name: 'default' })).rejects.toMatchObject({ api: { field: 'name' } });
  });

  it('lists its files with their kinds; removal is refused while a VM uses it, naming the VM', async () => {
    const iso = path.join(pool, 'installer.iso');
    const files = await t.call('pool.files', { pool: 'mine' });
    expect(files.find((f) => f.name === 'installer.iso')).toMatchObject({ path: iso, size: 64 * 1024, format: 'iso' });
    expect(files.map((f) => f.name)).not.toContain('latest.iso'); // symlinks are not listed
    expect(files.map((f) => f.name)).not.toContain('fifo.img');
    await t.call('vm.create', { name: 'user of mine', iso });
    await expect(t.call('pool.remove', { name: 'mine' })).rejects.toMatchObject({
      api: { code: 'conflict', message: expect.stringContaining('in use by "user of mine"') },
    });
    await t.call('vm.delete', { vm: 'user of mine' });
    await t.call('pool.remove', { name: 'mine' });
    expect(fs.existsSync(iso)).toBe(true);
  });
});
