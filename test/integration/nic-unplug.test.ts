// Taking network away from a running guest without a restart: a NIC added live is unplugged
// (the guest's interface goes, its forward with it), a slirp NIC's forwards change in its own
// table, and a passt NIC's forwards change by a new passt, with the same QEMU and guest.
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { BOOT_MS, FIXTURE, freePort, waitFor } from '../helpers';
import { guestRun } from './guest-shell';
import { guestArgs, TestHost } from './host-harness';

function fetchPage(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', () => resolve(null));
    req.on('timeout', () => req.destroy());
  });
}

const fwd = (hostPort: number) => ({ proto: 'tcp' as const, hostAddr: '127.0.0.1', hostPort, guestPort: 80 });
const page = (port: number) => waitFor(`the guest page on ${port}`, () => fetchPage(port), 60_000, 1000);
/** Nothing answers there any more (a forward gone closes its port). */
const gone = (port: number) => waitFor(`port ${port} to stop answering`, async () => (await fetchPage(port)) === null, 30_000, 500);

describe('network removed from a running guest', () => {
  let t: TestHost;
  afterAll(async () => {
    for (const vm of (await t?.call('vm.list', {})) ?? []) if (vm.pid) process.kill(vm.pid, 'SIGKILL');
    await t?.close();
  });

  it('unplugs a NIC added live and changes forwards of passt and slirp NICs in place', async () => {
    t = await TestHost.start();
    const [p1, p2, u1, u2] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const vm = await t.call(
      'vm.create',
      guestArgs('unplug', {
        memoryMiB: 192,
        append: 'console=ttyS0 quiet corral.http=80',
        nics: [{ kind: 'passt', forwards: [fwd(p1), fwd(p2)] }],
      }),
    );
    await t.call('vm.start', { vm: vm.id });
    await t.attach(vm.id);
    await t.waitSerial(vm.id, FIXTURE.prompt, BOOT_MS);
    expect(await page(p1)).toMatch(/corral-guest/);
    expect(await page(p2)).toMatch(/corral-guest/);
    const { pid: qemu } = await t.call('vm.get', { vm: vm.id });
    // the shell asks the terminal for its cursor at each prompt: a line typed meanwhile is lost,
    // so knock until it prompts afresh
    await waitFor(
      'the guest shell',
      async () => {
        const from = t.serial.get(vm.id)!.length;
        await t.type(vm.id, '\n');
        await new Promise((r) => setTimeout(r, 2000));
        return t.serial.get(vm.id)!.slice(from).includes('guest# ');
      },
      60_000,
      0,
    );
    // typed afresh at each look: a loaded guest busy with a hotplug may miss a line
    let look = 0;
    const ifaces = async () => {
      const tag = `IF${++look}`;
      await t.type(vm.id, `echo "${tag}:$(ls /sys/class/net | tr '\\n' ' ')."\n`);
      await t.waitSerial(vm.id, new RegExp(`${tag}:[a-z0-9 ]*\\.`), 30_000).catch(() => undefined);
      return (new RegExp(`${tag}:([a-z0-9 ]*)\\.`).exec(t.serial.get(vm.id)!)?.[1] ?? '').trim().split(' ');
    };

    // a slirp NIC plugged in live, with a forward; the guest takes slirp's usual address on it
    const added = await t.call('vm.update', { vm: vm.id, nics: [...vm.config.nics, { kind: 'user', forwards: [fwd(u1)] }] });
    expect(added.notLive).toEqual([]);
    expect(added.pending).toEqual([]);
    expect(added.booted!.nics.map((n) => [n.id, n.hotplug ?? false])).toEqual([
      ['net0', false],
      ['net1', true],
    ]);
    await waitFor('the guest to see the new NIC', async () => (await ifaces()).includes('eth1'), 180_000, 1000);
    await guestRun(t, vm.id, 'ip addr add 10.0.2.15/24 dev eth1; ip link set eth1 up');
    expect(await page(u1)).toMatch(/corral-guest/);

    // forwards changed live: passt's p2 goes (p1 stays), slirp's u1 becomes u2
    const [net0, net1] = added.config.nics;
    const changed = await t.call('vm.update', {
      vm: vm.id,
      nics: [
        { ...net0!, forwards: [fwd(p1)] },
        { ...net1!, forwards: [fwd(u2)] },
      ],
    });
    expect(changed.notLive).toEqual([]);
    expect(changed.pending).toEqual([]);
    await gone(p2);
    await gone(u1);
    expect(await page(p1)).toMatch(/corral-guest/);
    expect(await page(u2)).toMatch(/corral-guest/);

    // the NIC added live is unplugged: the guest's interface goes, its forward with it
    const removed = await t.call('vm.update', { vm: vm.id, nics: [changed.config.nics[0]!] });
    expect(removed.notLive).toEqual([]);
    expect(removed.pending).toEqual([]);
    expect(removed.booted!.nics.map((n) => n.id)).toEqual(['net0']);
    await waitFor('the guest to lose eth1', async () => !(await ifaces()).includes('eth1'), 120_000, 1000);
    await gone(u2);
    expect(await page(p1)).toMatch(/corral-guest/);

    // a NIC the VM booted with cannot go live: pending, saying why
    const boot = await t.call('vm.update', { vm: vm.id, nics: [] });
    expect(boot.notLive).toEqual([{ field: 'nics', why: expect.stringMatching(/removing net0 needs a restart/) }]);
    expect(boot.pending).toContain('nics');
    expect(await page(p1)).toMatch(/corral-guest/);

    // all of it on the same QEMU and the same boot
    expect((await t.call('vm.get', { vm: vm.id })).pid).toBe(qemu);
    expect(t.serial.get(vm.id)!.split('CORRAL-GUEST-READY').length).toBe(2);
  });
});
