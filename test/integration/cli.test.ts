// The CLI's exact surface against a real `corral serve` process and real QEMU guests,
// including a host killed with SIGKILL while its guest runs.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MS, FIXTURE, FIXTURE_DIR, qemuPidsFor, tempDir, waitFor } from '../helpers';
import { consoleSession, corral, ServeProcess } from './serve-process';

const data = tempDir();
let serve: ServeProcess;
const NAME = `my vm, "quoted" 'x' ü`;
const boot = ['--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--append', 'console=ttyS0 quiet'];

function show(name: string) {
  return corral(data, ['vm', 'show', name, '--json']).then((r) => {
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout);
  });
}

beforeAll(async () => {
  // before any host runs, the CLI says how to start one
  const r = await corral(data, ['vm', 'list']);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/no Corral host is running.*corral serve/);
  serve = await ServeProcess.start(data); // registers the pool "fixtures"
});

afterAll(async () => {
  await serve?.stop();
  for (const pid of qemuPidsForDir(data)) process.kill(pid, 'SIGKILL');
});

function qemuPidsForDir(dir: string): number[] {
  const vmsDir = path.join(dir, 'vms');
  if (!fs.existsSync(vmsDir)) return [];
  return fs.readdirSync(vmsDir).flatMap((id) => qemuPidsFor(path.join(vmsDir, id, 'run', 'qemu.pid')));
}

describe('corral CLI', () => {
  it('refuses a second host on the same data dir', async () => {
    await expect(ServeProcess.start(data)).rejects.toThrow(/another Corral host \(corral serve, pid \d+\)/);
  });

  it('creates a VM with an awkward name and shows the stable JSON shape', async () => {
    const r = await corral(data, [
      'vm',
      'create',
      NAME,
      '--cpus',
      '1',
      '--memory',
      '256M',
      ...boot,
      '--forward',
      'tcp:0:22',
      '--restart',
      'on-failure',
    ]);
    expect(r).toMatchObject({ code: 2 });
    expect(r.stderr).toMatch(/port 0 is out of range/);
    const ok = await corral(data, [
      'vm',
      'create',
      NAME,
      '--cpus',
      '1',
      '--memory',
      '256M',
      ...boot,
      '--forward',
      'tcp:18622:22',
      '--restart',
      'on-failure',
    ]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const vm = await show(NAME);
    expect(vm).toMatchObject({ name: NAME, state: 'stopped', pid: null, restarts: 0, lastExit: null });
    expect(vm.config).toMatchObject({
      cpus: 1,
      memoryMiB: 256,
      restart: 'on-failure',
      forwards: [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 18622, guestPort: 22 }],
    });
    const list = JSON.parse((await corral(data, ['vm', 'list', '--json'])).stdout);
    expect(list).toEqual([vm]);
  });

  it.each([
    [['vm', 'create', 'a/b'], 1, /"name".*"\/"/],
    [['vm', 'create', ''], 1, /"name".*empty/],
    [['vm', 'create', 'tab\there'], 1, /control characters/],
    [['vm', 'create', NAME], 1, /already exists/],
    [['vm', 'create', 'x', '--cpus', '0'], 1, /"cpus".*at least 1/],
    [['vm', 'create', 'x', '--cpus', '1000000'], 1, /"cpus".*at most/],
    [['vm', 'create', 'x', '--memory', '-5'], 2, /--memory/],
    [['vm', 'create', 'x', '--memory', '1e30G'], 2, /--memory/],
    [['vm', 'create', 'x', '--disk', '10'], 2, /needs a unit/],
    [['vm', 'create', 'x', '--forward', 'ssh'], 2, /tcp:HOSTPORT:GUESTPORT/],
    [['vm', 'create', 'x', '--restart', 'sometimes'], 2, /--restart/],
    [['vm', 'create', 'x', '--kernel', '/nonexistent'], 1, /"kernel".*no such file/],
    [['vm', 'create', 'x', '--bogus'], 2, /Unknown option '--bogus'/],
    [['vm', 'start', 'nope'], 1, /no VM named "nope"/],
    [['vm', 'frobnicate', 'x'], 2, /unknown command/],
    [['vm', 'list', '--cpus', '2'], 2, /does not apply/],
  ])('corral %j fails with exit %i and a one-line message', async (args, code, msg) => {
    const r = await corral(data, args as string[]);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(msg);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('identifies existing images by their header, and refuses foreign or backed ones', async () => {
    const dir = tempDir();
    const outside = await corral(data, ['vm', 'create', 'early', '--disk-image', path.join(dir, 'x.img')]);
    fs.writeFileSync(path.join(dir, 'x.img'), Buffer.alloc(1024 * 1024));
    expect((await corral(data, ['vm', 'create', 'early', '--disk-image', path.join(dir, 'x.img')])).stderr).toMatch(
      /"disk.image".*outside the storage pools.*corral pool add/,
    );
    expect(outside.stderr).toMatch(/"disk.image".*no such file/);
    expect((await corral(data, ['pool', 'add', 'imgs', dir])).stdout).toContain(`Pool "imgs" is ${dir}`);
    const raw = path.join(dir, 'raw, disk.img');
    fs.writeFileSync(raw, Buffer.alloc(1024 * 1024));
    const qcow = path.join(dir, 'disk.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', qcow, '16M']);
    const backed = path.join(dir, 'overlay.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', qcow, '-F', 'qcow2', backed]);
    const vmdk = path.join(dir, 'disk.vmdk');
    execFileSync('qemu-img', ['create', '-q', '-f', 'vmdk', vmdk, '16M']);

    expect((await corral(data, ['vm', 'create', 'raw one', '--disk-image', raw])).code).toBe(0);
    expect((await show('raw one')).config.disks[0]).toEqual({ path: raw, format: 'raw', owned: false });
    expect((await corral(data, ['vm', 'create', 'qcow one', '--disk-image', qcow])).code).toBe(0);
    expect((await show('qcow one')).config.disks[0]).toMatchObject({ format: 'qcow2' });
    const v = await corral(data, ['vm', 'create', 'vmdk one', '--disk-image', vmdk]);
    expect(v.stderr).toMatch(/vmdk image.*convert/);
    const b = await corral(data, ['vm', 'create', 'backed one', '--disk-image', backed]);
    expect(b.stderr).toMatch(/backing file/);
    const dup = await corral(data, ['vm', 'create', 'dup', '--disk-image', raw]);
    expect(dup.stderr).toMatch(/already a disk of "raw one"/);
    // nor grows it
    const grow = await corral(data, ['vm', 'set', 'qcow one', '--disk-size', '32M']);
    expect(grow).toMatchObject({ code: 1 });
    expect(grow.stderr).toMatch(/"disk".*not created by Corral/);
    // deleting a VM never deletes an image it did not create
    expect((await corral(data, ['vm', 'delete', 'raw one'])).code).toBe(0);
    expect(fs.existsSync(raw)).toBe(true);
  });

  it('starts the VM and gives a two-way serial console that Ctrl-] leaves', async () => {
    const r = await corral(data, ['vm', 'start', NAME]);
    expect(r.stdout).toMatch(/running/);
    await waitFor(
      'the guest banner in the log',
      async () => (await corral(data, ['vm', 'log', NAME])).stdout.includes(FIXTURE.banner),
      BOOT_MS,
      250,
    );
    const out = await consoleSession(data, NAME, 'echo $((7*6))', /\n42\r?\n/);
    expect(out.code).toBe(0);
  });

  it('the host can be SIGKILLed: the guest keeps running and is reattached, same pid', async () => {
    const before = await show(NAME);
    expect(before.state).toBe('running');
    await serve.stop('SIGKILL');
    expect(() => process.kill(before.pid, 0)).not.toThrow();
    serve = await ServeProcess.start(data); // a stale lock and control socket are taken over
    const after = await show(NAME);
    expect(after).toMatchObject({ state: 'running', pid: before.pid });
    expect(qemuPidsForDir(data)).toEqual([before.pid]);
    const events = (await corral(data, ['events'])).stdout;
    expect(events).toMatch(/Reattached \(pid \d+\)/);
    // the reattached console still reaches the guest
    expect((await consoleSession(data, NAME, 'echo again-$((5*5))', /again-25/)).code).toBe(0);
  });

  it('stops with ACPI, keeps the log, lists events as JSON', async () => {
    const r = await corral(data, ['vm', 'stop', NAME]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/stopped \(user-stop\)/);
    // after a reattach the host is not QEMU's parent: no exit status, but the reason is known
    expect((await show(NAME)).lastExit).toMatchObject({ reason: 'user-stop', code: null, signal: null });
    expect((await corral(data, ['vm', 'log', NAME])).stdout).toContain(FIXTURE.banner);
    const events = JSON.parse((await corral(data, ['events', '--json'])).stdout) as Array<{ vmName: string; to: string }>;
    expect(events.some((e) => e.vmName === NAME && e.to === 'stopped')).toBe(true);
    const r2 = await corral(data, ['vm', 'stop', NAME]);
    expect(r2).toMatchObject({ code: 1 });
    expect(r2.stderr).toMatch(/not running/);
  });
});

describe('deleting', () => {
  it('--keep-disks keeps a disk Corral created; without it the disk goes', async () => {
    expect((await corral(data, ['vm', 'create', 'keeper', '--disk', '16M'])).code).toBe(0);
    const keeper = await show('keeper');
    const disk = keeper.config.disks[0].path as string;
    // created in the default pool
    expect(path.dirname(disk)).toBe(path.join(fs.realpathSync(data), 'images'));
    expect((await corral(data, ['vm', 'delete', 'keeper', '--keep-disks'])).code).toBe(0);
    expect(fs.existsSync(disk)).toBe(true);
    expect(fs.existsSync(path.join(data, 'vms', keeper.id))).toBe(false);
    expect((await corral(data, ['vm', 'create', 'goner', '--disk', '16M'])).code).toBe(0);
    const disk2 = (await show('goner')).config.disks[0].path as string;
    expect((await corral(data, ['vm', 'delete', 'goner'])).code).toBe(0);
    expect(fs.existsSync(disk2)).toBe(false);
  });
});

describe('storage pools', () => {
  it('lists, shows files by kind, and refuses to remove a pool in use, naming the VMs', async () => {
    const list = JSON.parse((await corral(data, ['pool', 'list', '--json'])).stdout) as Array<{ name: string; usedBy: string[] }>;
    expect(list.map((p) => p.name)).toEqual(expect.arrayContaining(['default', 'fixtures', 'imgs']));
    expect(list.find((p) => p.name === 'fixtures')!.usedBy).toContain(NAME);
    const human = (await corral(data, ['pool', 'list'])).stdout;
    expect(human).toMatch(/^NAME\s+PATH\s+SHARED\s+FREE\s+USED BY/);
    expect(human).toContain(FIXTURE_DIR);

    const files = JSON.parse((await corral(data, ['pool', 'files', 'fixtures', '--json'])).stdout) as Array<{
      name: string;
      format: string;
    }>;
    expect(files).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'vmlinuz', format: 'kernel' }),
        expect.objectContaining({ name: 'initramfs.cpio.gz', format: 'initrd' }),
      ]),
    );
    const imgs = JSON.parse((await corral(data, ['pool', 'files', 'imgs', '--json'])).stdout) as Array<{ name: string; format: string }>;
    expect(imgs).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'raw, disk.img', format: 'raw' }),
        expect.objectContaining({ name: 'disk.qcow2', format: 'qcow2' }),
      ]),
    );

    const busy = await corral(data, ['pool', 'remove', 'fixtures']);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain(`in use by "${NAME}"`);
    expect((await corral(data, ['pool', 'remove', 'default'])).stderr).toMatch(/default pool cannot be removed/);
    expect((await corral(data, ['pool', 'add', 'etc', '/etc'])).stderr).toMatch(/"path".*cannot be a pool/);
    expect((await corral(data, ['pool', 'add', 'data', data])).stderr).toMatch(/"path".*data dir/);
    expect((await corral(data, ['pool', 'add', 'bad/name', '/tmp'])).stderr).toMatch(/"name"/);
    expect((await corral(data, ['pool', 'files', 'nope'])).stderr).toMatch(/no pool named "nope"/);

    // once no VM uses it, it goes; its files stay
    for (const vm of ['qcow one']) expect((await corral(data, ['vm', 'delete', vm])).code).toBe(0);
    const gone = await corral(data, ['pool', 'remove', 'imgs']);
    expect(gone).toMatchObject({ code: 0 });
    const names = (JSON.parse((await corral(data, ['pool', 'list', '--json'])).stdout) as Array<{ name: string }>).map((p) => p.name);
    expect(names).not.toContain('imgs');
  });
});
