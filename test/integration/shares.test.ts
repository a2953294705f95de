// Shared folders on real QEMU, a real guest and real virtiofsd: files written on the host are
// read in the guest over virtiofs and 9p, read-only shares refuse the guest's writes, folders
// that would open the host or Corral's data are refused, a change to a running VM waits for
// its next boot, a host SIGKILL leaves virtiofsd running and the next host finds it again, and
// a virtiofsd that dies is a failure the restart policy handles.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { processStartTime } from '../../electron/core/qemu/proc';
import { BOOT_MS, FIXTURE, qemuPidsFor, tempDir, waitFor } from '../helpers';
import { consoleSession, corral, ServeProcess } from './serve-process';

const data = tempDir();
const host = tempDir('corral-shares-');
let serve: ServeProcess | null = null;
let id = '';
const NAME = 'sharer';

// QEMU drops to an unprivileged user under a root host, and 9p reaches folders as that user
fs.chmodSync(host, 0o755);
const dir = (name: string, mode = 0o755) => {
  const d = path.join(host, name);
  fs.mkdirSync(d);
  fs.chmodSync(d, mode);
  return d;
};
const rw = dir('rw');
const ro = dir('ro');
const p9 = dir('p9');
const p9rw = dir('p9rw', 0o777);
fs.writeFileSync(path.join(rw, 'from-host.txt'), 'virtiofs-rw-hello\n', { mode: 0o644 });
fs.writeFileSync(path.join(ro, 'from-host.txt'), 'virtiofs-ro-hello\n', { mode: 0o644 });
fs.writeFileSync(path.join(p9, 'from-host.txt'), 'ninep-hello\n', { mode: 0o644 });

interface Shown {
  id: string;
  state: string;
  pid: number | null;
  restarts: number;
  lastExit: { reason: string } | null;
}
interface Share {
  tag: string;
  path: string;
  mechanism: string;
  mount: string;
  pending: string | null;
}

async function cli(...args: string[]) {
  return corral(data, args);
}
async function show(): Promise<Shown> {
  const r = await cli('vm', 'show', NAME, '--json');
  if (r.code) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Shown;
}
async function shares(): Promise<Share[]> {
  return JSON.parse((await cli('vm', 'share', 'list', NAME, '--json')).stdout) as Share[];
}
/** Runs a line in the guest's shell and returns what it printed up to the marker. */
async function guest(line: string): Promise<string> {
  const marker = `END-${Math.random().toString(36).slice(2, 8)}`;
  const r = await consoleSession(data, NAME, `${line}; echo ${marker}`, new RegExp(`\\n${marker}`));
  return r.out;
}
const runDir = () => path.join(data, 'vms', id, 'run');
const virtiofsdPid = (i: number) => Number(fs.readFileSync(path.join(runDir(), `fs${i}.pid`), 'utf8'));
const alive = (pid: number) => processStartTime(pid) !== null;

afterAll(async () => {
  await serve?.stop();
  if (id) {
    for (const pid of qemuPidsFor(path.join(runDir(), 'qemu.pid'))) process.kill(pid, 'SIGKILL');
    for (const i of [0, 1])
      try {
        process.kill(virtiofsdPid(i), 'SIGKILL');
      } catch {
        // gone with its QEMU
      }
  }
  fs.rmSync(data, { recursive: true, force: true });
  fs.rmSync(host, { recursive: true, force: true });
});

describe('shared folders (virtiofs and 9p)', () => {
  it("has what virtiofs needs here: root (its sandbox) and QEMU 7.2's virtiofsd", () => {
    // like the namespace tests, this one runs as root (CI does); a missing prerequisite fails, never skips
    expect(process.getuid?.(), 'run the tests as root: virtiofsd sandboxes itself in namespaces').toBe(0);
    expect(fs.existsSync('/usr/lib/qemu/virtiofsd'), 'virtiofsd ships with qemu-system-x86 (scripts/setup.sh)').toBe(true);
  });

  it('creates a VM with shares and refuses folders that would open the host or Corral', async () => {
    serve = await ServeProcess.start(data);
    const created = await cli(
      'vm',
      'create',
      NAME,
      '--memory',
      '256M',
      '--kernel',
      FIXTURE.kernel,
      '--initrd',
      FIXTURE.initrd,
      '--append',
      'console=ttyS0 quiet',
      '--restart',
      'on-failure',
      '--share',
      `${rw}:fsrw`,
      '--share',
      `${ro}:fsro:ro`,
    );
    expect(created.stderr).toBe('');
    id = (await show()).id;
    const added = await cli('vm', 'share', 'add', NAME, p9, '--tag', 'p9', '--read-only', '--via', '9p');
    expect(added.stderr).toBe('');
    expect(added.stdout).toContain('In the guest, as root: mkdir -p /mnt/p9 && mount -t 9p');

    const refused = async (folder: string, why: RegExp) => {
      const r = await cli('vm', 'share', 'add', NAME, folder);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(why);
    };
    await refused('/', /"path": \/: is the root directory/);
    await refused(data, /is Corral's data dir, which holds its database/);
    await refused(path.join(data, 'vms'), /is inside Corral's data dir/);
    const link = path.join(host, 'sneaky');
    fs.symlinkSync(path.join(data, 'vms'), link);
    await refused(link, /it leads to .*\/vms\)/);
    await refused('/proc/self', /host system tree/);
    await refused(path.join(host, 'missing'), /no such directory/);
    // nothing was saved by the refusals
    expect((await shares()).map((s) => s.tag)).toEqual(['fsrw', 'fsro', 'p9']);
  });

  it('the guest reads host files over virtiofs and 9p; read-only shares refuse writes', async () => {
    expect((await cli('vm', 'start', NAME)).code).toBe(0);
    const serial = () => fs.readFileSync(path.join(data, 'vms', id, 'serial.log'), 'utf8');
    await waitFor('the guest to boot', () => /CORRAL-GUEST-READY/.test(serial()), BOOT_MS, 500);
    const list = await shares();
    expect(list.map((s) => [s.tag, s.mechanism])).toEqual([
      ['fsrw', 'virtiofs'],
      ['fsro', 'virtiofs'],
      ['p9', '9p'],
    ]);
    const shown = (await cli('vm', 'show', NAME)).stdout;
    expect(shown).toMatch(/Share fsro:\s+\S+ \(virtiofs, read-only\); mount: mkdir -p \/mnt\/fsro && mount -t virtiofs -o ro fsro/);
    // the very mount commands Corral shows
    const out = await guest(list.map((s) => s.mount).join(' && '));
    expect(out).not.toMatch(/mount: |No such device|can't/);

    const read = await guest('cat /mnt/fsrw/from-host.txt /mnt/fsro/from-host.txt /mnt/p9/from-host.txt');
    expect(read).toContain('virtiofs-rw-hello');
    expect(read).toContain('virtiofs-ro-hello');
    expect(read).toContain('ninep-hello');

    const wrote = await guest('echo from-guest > /mnt/fsrw/from-guest.txt; echo rw=$?');
    expect(wrote).toMatch(/rw=0/);
    expect(fs.readFileSync(path.join(rw, 'from-guest.txt'), 'utf8')).toBe('from-guest\n');

    const refused = await guest('echo x > /mnt/fsro/nope; echo fsro=$?; echo x > /mnt/p9/nope; echo p9=$?');
    expect(refused).toMatch(/Read-only file system/);
    expect(refused).toMatch(/fsro=1/);
    expect(refused).toMatch(/p9=1/);
    expect(fs.existsSync(path.join(ro, 'nope'))).toBe(false);
    expect(fs.existsSync(path.join(p9, 'nope'))).toBe(false);
  });

  it('a share added to a running VM waits for its next boot', async () => {
    const r = await cli('vm', 'share', 'add', NAME, p9rw, '--tag', 'p9rw', '--via', '9p');
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/added at the next boot/);
    expect(r.stdout).toMatch(/pending until the next boot: shared folders attach when QEMU starts/);
    expect((await cli('vm', 'show', NAME)).stdout).toMatch(/Pending:\s+shares \(at the next boot\)/);
    expect((await shares()).find((s) => s.tag === 'p9rw')?.pending).toBe('add');
  });

  it('a host SIGKILL leaves virtiofsd running; the next host finds it and the folder still works', async () => {
    const before = await show();
    const fsd = [virtiofsdPid(0), virtiofsdPid(1)];
    await serve!.stop('SIGKILL');
    expect(alive(before.pid!)).toBe(true);
    for (const pid of fsd) expect(alive(pid)).toBe(true);

    serve = await ServeProcess.start(data);
    const after = await show();
    expect(after).toMatchObject({ state: 'running', pid: before.pid });
    expect([virtiofsdPid(0), virtiofsdPid(1)]).toEqual(fsd);
    fs.writeFileSync(path.join(rw, 'after-restart.txt'), 'still-shared\n', { mode: 0o644 });
    expect(await guest('cat /mnt/fsrw/after-restart.txt')).toContain('still-shared');
  });

  it('a virtiofsd that dies ends the run as share-failed; the policy restarts it with the pending share', async () => {
    const before = await show();
    const fsd = virtiofsdPid(0);
    process.kill(fsd, 'SIGKILL');
    const after = await waitFor(
      'the VM restarted by its policy',
      async () => {
        const v = await show();
        return v.state === 'running' && v.restarts === 1 ? v : null;
      },
      BOOT_MS,
      250,
    );
    expect(after.lastExit?.reason).toBe('share-failed');
    expect(alive(before.pid!)).toBe(false);
    expect(virtiofsdPid(0)).not.toBe(fsd);
    expect((await cli('vm', 'show', NAME)).stdout).toMatch(/Pending:\s+-/);
    const serial = () => fs.readFileSync(path.join(data, 'vms', id, 'serial.log'), 'utf8');
    await waitFor('the guest to boot again', () => serial().split('CORRAL-GUEST-READY').length > 2, BOOT_MS, 500);
    const mount = (await shares()).find((s) => s.tag === 'p9rw')!.mount;
    const out = await guest(`${mount} && echo guest-wrote > /mnt/p9rw/new.txt; echo p9rw=$?`);
    expect(out).toMatch(/p9rw=0/);
    expect(fs.readFileSync(path.join(p9rw, 'new.txt'), 'utf8')).toBe('guest-wrote\n');
    expect((await cli('events')).stdout).toMatch(/shared folder's virtiofsd ended, so QEMU was stopped/);
  });
});
