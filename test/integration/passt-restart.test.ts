// A passt that dies while the guest runs is put back: a new passt on the NIC's socket, which the
// same QEMU accepts (NETDEV_STREAM_CONNECTED) while the same booted guest runs on (its uptime
// goes on), and the timeline says so.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
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

/** The send and receive buffer sizes of the socket passt talks to QEMU on (its fd 3), as ss shows them. */
function tapBuffers(pid: number): { send: number; receive: number } {
  const line = execFileSync('ss', ['-xmp'], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.includes(`pid=${pid},fd=3)`));
  const m = /rb(\d+),t\d+,tb(\d+)/.exec(line ?? '');
  if (!m) throw new Error(`no socket on fd 3 of passt ${pid} in ss -xmp`);
  return { receive: Number(m[1]), send: Number(m[2]) };
}

/** What a socket gets when asked for more than the system allows: the cap, doubled by the kernel. */
const capped = (sysctl: string) => 2 * Number(fs.readFileSync(`/proc/sys/net/core/${sysctl}`, 'utf8'));

describe('a passt that dies', () => {
  let t: TestHost;
  afterAll(async () => {
    for (const vm of (await t?.call('vm.list', {})) ?? []) if (vm.pid) process.kill(vm.pid, 'SIGKILL');
    await t?.close();
  });

  it('is started again and QEMU takes it back while the guest runs on', async () => {
    t = await TestHost.start();
    const port = await freePort();
    const vm = await t.call(
      'vm.create',
      guestArgs('web', {
        memoryMiB: 192,
        append: 'console=ttyS0 quiet corral.http=80',
        nics: [{ kind: 'passt', forwards: [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: port, guestPort: 80 }] }],
      }),
    );
    await t.call('vm.start', { vm: vm.id });
    await t.attach(vm.id);
    await t.waitSerial(vm.id, FIXTURE.prompt, BOOT_MS);
    expect(await waitFor('the guest page through passt', () => fetchPage(port), BOOT_MS, 1000)).toMatch(/corral-guest/);
    const { pid: qemu } = await t.call('vm.get', { vm: vm.id });
    const uptime = async () => Number((await guestRun(t, vm.id, 'cut -d" " -f1 /proc/uptime')).split('\n').at(-1));
    const before = await uptime();
    expect(before).toBeGreaterThan(0);

    // QEMU's own word that a passt connected to the NIC's netdev, from here on
    let reconnected = false;
    t.host.vms.registry.get(vm.id)!.machine.onEvent((e) => {
      if (e.event === 'NETDEV_STREAM_CONNECTED' && e.data?.['netdev-id'] === 'net0') reconnected = true;
    });
    const pidFile = path.join(t.dataDir, 'vms', vm.id, 'run', 'passt-net0.pid');
    const first = Number(fs.readFileSync(pidFile, 'utf8').trim());
    // passt's socket to QEMU has the largest buffers the system allows: at the default size its
    // frames to the guest were dropped under load until it reset the host's connections
    expect(tapBuffers(first)).toEqual({ send: capped('wmem_max'), receive: capped('rmem_max') });
    process.kill(first, 'SIGKILL');
    const events = await waitFor(
      'the event that passt was put back',
      async () => {
        const list = await t.call('events.list', { vm: vm.id });
        return list.some((e) => /passt for net0 \(pid \d+\) ended while the guest ran; started it again \(pid \d+\)/.test(e.message))
          ? list
          : null;
      },
      60_000,
      250,
    );
    expect(events.some((e) => e.kind === 'error' && /passt/.test(e.message))).toBe(false);
    const second = Number(fs.readFileSync(pidFile, 'utf8').trim());
    expect(second).not.toBe(first);
    expect(tapBuffers(second)).toEqual({ send: capped('wmem_max'), receive: capped('rmem_max') });

    // QEMU accepted the new passt's connection on the same netdev: no new QEMU, no reboot
    await waitFor("QEMU's stream netdev connected again", () => reconnected, 30_000, 250);
    expect((await t.call('vm.get', { vm: vm.id })).pid).toBe(qemu);
    expect((await t.call('vm.get', { vm: vm.id })).state).toBe('running');
    expect(await uptime()).toBeGreaterThan(before);
    expect(t.serial.get(vm.id)!.split('CORRAL-GUEST-READY').length).toBe(2);

    // the forward works again through the new passt, with the guest idle since: nothing it sent
    // taught the new passt its MAC, so this holds only if the host announced the NIC
    expect(await waitFor('the guest page through the new passt', () => fetchPage(port), 30_000, 1000)).toMatch(/corral-guest/);
  });
});
