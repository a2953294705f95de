// A real guest (Debian kernel + busybox) under real QEMU (TCG), driven through the API.
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vmFiles } from '../../electron/core/paths';
import { BOOT_MS, FIXTURE, qemuPidsFor, waitFor, waitState } from '../helpers';
import { guestArgs, oddFixture, TestHost } from './host-harness';

let t: TestHost;
beforeAll(async () => {
  t = await TestHost.start();
});
afterAll(async () => {
  for (const vm of await t.call('vm.list', {})) if (vm.pid) process.kill(vm.pid, 'SIGKILL');
  await t.close();
});

describe('a guest from create to console', () => {
  const name = `guest, "één" ✓`;
  let id: string;
  let pidFile: string;

  it('creates a VM whose name and boot files need escaping', async () => {
    const odd = oddFixture(t.dataDir);
    const vm = await t.call('vm.create', guestArgs(name, { ...odd, disk: { size: 64 * 1024 * 1024 } }));
    id = vm.id;
    pidFile = vmFiles(t.host.layout, id).pidFile;
    expect(vm).toMatchObject({ name, state: 'stopped', pid: null, restarts: 0, lastExit: null });
    expect(vm.config.disks).toEqual([{ path: expect.stringMatching(/disk0\.qcow2$/), format: 'qcow2', owned: true }]);
    expect(fs.readFileSync(vm.config.disks[0]!.path).subarray(0, 4).toString('latin1')).toBe('QFI\xfb');
  });

  it('starts, boots and shows the banner on the serial console', async () => {
    const vm = await t.call('vm.start', { vm: name });
    expect(vm.state).toBe('running');
    expect(qemuPidsFor(pidFile)).toEqual([vm.pid]);
    await t.attach(id);
    await t.waitSerial(id, FIXTURE.banner);
    await t.waitSerial(id, FIXTURE.prompt);
    // QEMU keeps the log too, so a console opened later sees the boot
    const log = await t.call('serial.log', { vm: id });
    expect(Buffer.from(log.data, 'base64').toString()).toContain(FIXTURE.banner);
  });

  it('takes typed input and shows the output', async () => {
    await t.type(id, 'echo $((6*7))\n');
    await t.waitSerial(id, /\r?\n42\r?\n/);
  });

  it('places every live serial byte at its position in the scrollback', async () => {
    await t.type(id, 'for i in 1 2 3 4 5 6 7 8; do echo offset-check-$i; done\n');
    await t.waitSerial(id, 'offset-check-8');
    const chunks = () =>
      t.events.filter((e) => e.event === 'serial.data').map((e) => e.payload as { vmId: string; data: string; offset: number });
    const end = () => chunks().reduce((n, c) => Math.max(n, c.offset + Buffer.from(c.data, 'base64').length), 0);
    // the scrollback ends where the live stream is (output may still come, e.g. the prompt:
    // then look again once it has)
    const log = await waitFor(
      'serial.log to end where the live stream is',
      async () => {
        const at = end();
        const l = await t.call('serial.log', { vm: id, tailBytes: 1024 * 1024 });
        return l.size === at && end() === at ? l : null;
      },
      30_000,
      100,
    );
    const scroll = Buffer.from(log.data, 'base64');
    const base = log.size - scroll.length; // position of scroll[0]
    const live = chunks();
    expect(live.length).toBeGreaterThan(0);
    let next = live[0]!.offset;
    for (const c of live) {
      const data = Buffer.from(c.data, 'base64');
      expect(c.offset).toBe(next); // contiguous: nothing lost or repeated
      if (c.offset >= base) expect(scroll.subarray(c.offset - base, c.offset - base + data.length).equals(data)).toBe(true);
      next += data.length;
    }
    // and it holds the whole boot
    expect(log.size).toBe(next);
    expect(scroll.toString()).toContain(FIXTURE.banner);
  });

  it('pauses (the guest stops answering) and resumes', async () => {
    expect((await t.call('vm.pause', { vm: id })).state).toBe('paused');
    await t.type(id, 'echo resumed-$((40+2))\n');
    await sleep(1500);
    expect(t.serial.get(id)).not.toContain('resumed-42');
    expect((await t.call('vm.resume', { vm: id })).state).toBe('running');
    await t.waitSerial(id, 'resumed-42');
  });

  it('resets: the guest boots again in the same QEMU', async () => {
    const before = (t.serial.get(id) ?? '').split(FIXTURE.banner).length;
    const pid = (await t.call('vm.get', { vm: id })).pid;
    await t.call('vm.reset', { vm: id });
    await waitFor('a second banner', () => (t.serial.get(id) ?? '').split(FIXTURE.banner).length > before, BOOT_MS);
    expect((await t.call('vm.get', { vm: id })).pid).toBe(pid);
  });

  it('stops with the ACPI power button and records a clean shutdown', async () => {
    await t.waitSerial(id, /guest# $/);
    const vm = await t.call('vm.stop', { vm: id, timeoutSec: 30 });
    expect(vm).toMatchObject({ state: 'stopped', pid: null, lastExit: { reason: 'user-stop', code: 0, signal: null } });
    expect(qemuPidsFor(pidFile)).toEqual([]);
    const events = await t.call('events.list', { vm: id, limit: 5 });
    expect(events[0]).toMatchObject({ kind: 'state', from: 'stopping', to: 'stopped', reason: 'user-stop' });
    expect(events[0]!.message).toMatch(/shut down cleanly/);
  });

  it('edits while running leave boot-time settings pending; refuses to delete while running', async () => {
    await t.call('vm.start', { vm: id });
    const running = await t.call('vm.update', { vm: id, append: 'console=ttyS0' });
    expect(running.pending).toEqual(['append']);
    await expect(t.call('vm.update', { vm: id, append: 'console=ttyS0 quiet', live: true })).rejects.toThrow(/cannot apply append live/);
    await expect(t.call('vm.delete', { vm: id })).rejects.toThrow(/stop it/);
    const killed = await t.call('vm.kill', { vm: id });
    expect(killed).toMatchObject({ state: 'stopped', pid: null, lastExit: { reason: 'user-kill' } });
    expect(killed.pending).toEqual([]); // nothing is pending once stopped
    const edited = await t.call('vm.update', { vm: id, cpus: 2, memoryMiB: 320, append: 'console=ttyS0 quiet' });
    expect(edited.config).toMatchObject({ cpus: 2, memoryMiB: 320 });
    expect(edited.configVersion).toBe(3);
  });

  it('two simultaneous starts yield one QEMU', async () => {
    const results = await Promise.allSettled([t.call('vm.start', { vm: id }), t.call('vm.start', { vm: name })]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason.api).toMatchObject({ code: 'conflict' });
    await sleep(300);
    const pids = qemuPidsFor(pidFile);
    expect(pids).toHaveLength(1);
    expect(pids[0]).toBe((await t.call('vm.get', { vm: id })).pid);
  });

  it('a guest that powers itself off ends as guest-poweroff', async () => {
    await t.call('serial.attach', { vm: id });
    await t.waitSerial(id, /guest# $/);
    await t.type(id, 'poweroff\n');
    const vm = await waitState(t.host, id, ['stopped', 'crashed'], 30_000);
    expect(vm).toMatchObject({ state: 'stopped', lastExit: { reason: 'guest-poweroff' } });
  });

  it('QEMU killed from outside is a crash with its signal', async () => {
    const vm = await t.call('vm.start', { vm: id });
    process.kill(vm.pid!, 'SIGKILL');
    const after = await waitState(t.host, id, ['crashed'], 30_000);
    expect(after.lastExit).toMatchObject({ reason: 'qemu-killed', signal: 'SIGKILL' });
    expect(fs.existsSync(pidFile)).toBe(false);
  });

  it('deletes the VM and its disk', async () => {
    const disk = (await t.call('vm.get', { vm: id })).config.disks[0]!.path;
    await t.call('vm.delete', { vm: id });
    expect(fs.existsSync(disk)).toBe(false);
    await expect(t.call('vm.get', { vm: id })).rejects.toThrow(/no VM/);
    const last = await t.call('events.list', { limit: 1 });
    expect(last[0]).toMatchObject({ kind: 'deleted', vmName: name });
  });
});

describe('bad input loses nothing', () => {
  it('a missing kernel is refused at create, naming the field', async () => {
    await expect(t.call('vm.create', guestArgs('nokernel', { kernel: '/nonexistent/vmlinuz' }))).rejects.toMatchObject({
      api: { field: 'kernel' },
    });
    expect((await t.call('vm.list', {})).map((v) => v.name)).not.toContain('nokernel');
  });

  it('a QEMU that cannot start leaves the VM stopped with the reason', async () => {
    const { kernel } = oddFixture(t.dataDir);
    const vm = await t.call('vm.create', guestArgs('broken', { kernel }));
    fs.writeFileSync(kernel, 'not a kernel');
    await expect(t.call('vm.start', { vm: 'broken' })).rejects.toThrow(/could not start "broken"/);
    const after = await t.call('vm.get', { vm: vm.id });
    expect(after.state).toBe('stopped');
    expect(qemuPidsFor(vmFiles(t.host.layout, vm.id).pidFile)).toEqual([]);
  });
});
