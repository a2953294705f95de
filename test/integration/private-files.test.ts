// Corral's files out of other users' reach, with a real `corral serve` and a real guest: the
// short run dir in a shared temp dir is not followed through a planted symlink, a shared
// --data dir is refused and left as it was, and the store, logs and sockets are 0600.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MS, FIXTURE, qemuPidsFor, tempDir, waitFor } from '../helpers';
import { corral, ServeProcess } from './serve-process';

// a temp dir of our own stands in for /tmp; a data dir deep enough that sockets go there
const tmp = tempDir('corral-tmp-');
const parent = tempDir();
const data = path.join(parent, 'd'.repeat(80 - parent.length - 1));
const shortRun = path.join(tmp, `corral-${process.getuid!()}`);
const env = { TMPDIR: tmp, XDG_RUNTIME_DIR: '' };
let serve: ServeProcess;
const NAME = 'private';
const modeOf = (p: string) => fs.statSync(p).mode & 0o7777;

beforeAll(async () => {
  fs.chmodSync(tmp, 0o1777);
  serve = await ServeProcess.start(data, '127.0.0.1:0', env);
  const boot = ['--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--append', 'console=ttyS0 quiet', '--memory', '128M'];
  expect((await corral(data, ['vm', 'create', NAME, ...boot, '--disk', '16M'])).code).toBe(0);
});

afterAll(async () => {
  await corral(data, ['vm', 'kill', NAME]);
  await serve?.stop();
  for (const d of [tmp, parent]) fs.rmSync(d, { recursive: true, force: true });
});

describe('files and directories', () => {
  it('refuses to start a VM through a symlink planted at the short run dir', async () => {
    const elsewhere = tempDir('corral-planted-');
    fs.symlinkSync(elsewhere, shortRun);
    const r = await corral(data, ['vm', 'start', NAME]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${shortRun} is a symbolic link`));
    expect(fs.readdirSync(elsewhere)).toEqual([]);
    const vm = JSON.parse((await corral(data, ['vm', 'show', NAME, '--json'])).stdout) as { id: string; state: string };
    expect(vm.state).not.toBe('running');
    // without the link the same start works, with its sockets in the short dir
    fs.unlinkSync(shortRun);
    expect((await corral(data, ['vm', 'start', NAME])).code).toBe(0);
    expect(modeOf(shortRun)).toBe(0o700);
    const runDir = path.join(shortRun, fs.readdirSync(shortRun)[0]!);
    expect(runDir.endsWith(vm.id)).toBe(true);
    expect(qemuPidsFor(path.join(runDir, 'qemu.pid'))).toHaveLength(1);
  });

  it('creates the store, logs, disk and sockets 0600 and their dirs 0700', async () => {
    const vm = JSON.parse((await corral(data, ['vm', 'show', NAME, '--json'])).stdout) as {
      id: string;
      config: { disks: Array<{ path: string }>; nics: Array<{ id: string; kind: string }> };
    };
    const vmDir = path.join(data, 'vms', vm.id);
    const runDir = path.join(shortRun, fs.readdirSync(shortRun)[0]!);
    await waitFor('the guest banner', () => fs.readFileSync(path.join(vmDir, 'serial.log'), 'utf8').includes(FIXTURE.banner), BOOT_MS, 250);
    const sockets = fs.readdirSync(runDir).filter((f) => f.endsWith('.sock'));
    // and one per passt NIC (the default kind where passt is installed), which the host binds
    const passt = vm.config.nics.filter((n) => n.kind === 'passt').map((n) => `${n.id}.sock`);
    expect(sockets.sort()).toEqual([...passt, 'qga.sock', 'qmp.sock', 'serial.sock', 'vnc.sock'].sort());
    const files = [
      ...['corral.db', 'corral.db-wal', 'corral.db-shm', 'control.sock', 'host.lock'].map((f) => path.join(data, f)),
      ...['serial.log', 'qemu.log'].map((f) => path.join(vmDir, f)),
      vm.config.disks[0]!.path,
      ...sockets.map((s) => path.join(runDir, s)),
      path.join(runDir, 'qemu.pid'),
    ];
    const modes = Object.fromEntries(files.map((f) => [path.relative(parent, f), modeOf(f).toString(8)]));
    expect(modes).toEqual(Object.fromEntries(files.map((f) => [path.relative(parent, f), '600'])));
    for (const d of [data, path.join(data, 'vms'), vmDir, runDir]) expect(modeOf(d).toString(8), d).toBe('700');
  });

  it("refuses a 1777 --data dir holding another user's file, and leaves its mode alone", async () => {
    const shared = tempDir();
    fs.chmodSync(shared, 0o1777);
    fs.writeFileSync(path.join(shared, 'their-file'), '');
    if (process.getuid!() === 0) fs.chownSync(path.join(shared, 'their-file'), 54321, 54321);
    const why = process.getuid!() === 0 ? /holds files of other users \(such as "their-file"\)/ : /open to other users \(mode 1777\)/;
    await expect(ServeProcess.start(shared)).rejects.toThrow(why);
    expect(modeOf(shared)).toBe(0o1777);
    expect(fs.readdirSync(shared)).toEqual(['their-file']);
  });
});
