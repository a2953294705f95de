// Forwards stay on loopback unless exposed on purpose, and the host's own connections to a
// guest (the liveness probe) go only where the running QEMU forwards: a real guest under QEMU,
// a real listener standing where a pending forward would lead.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MS, FIXTURE, freePort } from '../helpers';
import { guestArgs, TestHost } from './host-harness';

let t: TestHost;
beforeAll(async () => {
  // probes every 300 ms: a wrong target would be hit many times while the test watches
  t = await TestHost.start(undefined, { livenessIntervalMs: 300, livenessTimeoutMs: 200 });
});
afterAll(async () => {
  for (const vm of await t.call('vm.list', {})) if (vm.pid) process.kill(vm.pid, 'SIGKILL');
  await t.close();
});

describe('forwards beyond loopback', () => {
  it.each([
    [{ hostAddr: '0.0.0.0', hostPort: 18080, guestPort: 80 }, 'forwards.0.exposed', /every network of the host.*"exposed"/],
    [{ hostAddr: '127.0.0.1', hostPort: 80, guestPort: 80 }, 'forwards.0.exposed', /below 1024.*"exposed"/],
    [{ hostAddr: '203.0.113.9', hostPort: 18080, guestPort: 80, exposed: true }, 'forwards.0.hostAddr', /not an address of this host/],
  ])('%j is refused naming %s', async (fwd, field, why) => {
    await expect(t.call('vm.create', { name: 'open', forwards: [fwd] })).rejects.toMatchObject({
      api: { code: 'invalid-argument', field, message: expect.stringMatching(why) },
    });
    expect(await t.call('vm.list', {})).toEqual([]);
  });

  it('is accepted with the flag, and shown as exposed', async () => {
    const vm = await t.call('vm.create', {
      name: 'open',
      forwards: [{ hostAddr: '0.0.0.0', hostPort: 18080, guestPort: 80, exposed: true }],
    });
    expect(vm.config.forwards[0]).toMatchObject({ hostAddr: '0.0.0.0', exposed: true });
    await t.call('vm.delete', { vm: 'open' });
  });
});

describe('forwards that collide', () => {
  it('are refused naming the VM or saying a program holds the port', async () => {
    const port = await freePort();
    await t.call('vm.create', { name: 'holder', forwards: [{ hostPort: port, guestPort: 22 }] });
    await expect(t.call('vm.create', { name: 'second', forwards: [{ hostPort: port, guestPort: 80 }] })).rejects.toMatchObject({
      api: { code: 'conflict', field: 'forwards.0.hostPort', message: expect.stringMatching(`already forwarded by VM "holder"`) },
    });
    const busy = net.createServer();
    const busyPort = await freePort();
    await new Promise<void>((resolve) => busy.listen(busyPort, '127.0.0.1', resolve));
    try {
      await expect(
        t.call('vm.create', {
          name: 'second',
          nics: [{ kind: 'user' }, { kind: 'user', forwards: [{ hostPort: busyPort, guestPort: 80 }] }],
        }),
      ).rejects.toMatchObject({
        api: { code: 'conflict', field: 'nics.1.forwards.0.hostPort', message: expect.stringMatching(/in use by another program/) },
      });
    } finally {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    }
    expect((await t.call('vm.list', {})).map((v) => v.name)).toEqual(['holder']);
    await t.call('vm.delete', { vm: 'holder' });
  });
});

describe('the liveness probe', () => {
  it('never connects where only a pending forward would lead', async () => {
    const sshPort = await freePort();
    const vm = await t.call('vm.create', guestArgs('probed', { forwards: [{ hostPort: sshPort, guestPort: 22 }] }));
    await t.call('vm.start', { vm: vm.id });
    await t.attach(vm.id);
    await t.waitSerial(vm.id, FIXTURE.prompt, BOOT_MS);

    // a listener where the new forward would be: only the host's probe could connect to it
    const trap = net.createServer();
    const hits: string[] = [];
    trap.on('connection', (c) => {
      hits.push(`${c.remoteAddress}:${c.remotePort}`);
      c.destroy();
    });
    const trapPort = await freePort();
    try {
      // the forward waits for the next boot; the probe applies at once. (The listener comes
      // after: a port another program holds is refused as a forward.)
      const r = await t.call('vm.update', {
        vm: vm.id,
        forwards: [{ hostPort: trapPort, guestPort: 80 }],
        liveness: { kind: 'http', port: 80, path: '/admin' },
      });
      await new Promise<void>((resolve) => trap.listen(trapPort, '127.0.0.1', resolve));
      expect(r.notLive.map((n) => n.field)).toEqual(['forwards']);
      expect(r.booted?.forwards).toEqual([{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: sshPort, guestPort: 22, exposed: false }]);
      await sleep(3000); // ten probe intervals
      expect(hits).toEqual([]);
      // the probe says why it is off instead
      const events = await t.call('events.list', { vm: vm.id, limit: 20 });
      expect(events.map((e) => e.message)).toContainEqual(expect.stringMatching(/Liveness probe off.*guest port 80/));
      expect((await t.call('vm.get', { vm: vm.id })).state).toBe('running');
    } finally {
      await new Promise<void>((resolve) => trap.close(() => resolve()));
      await t.call('vm.kill', { vm: vm.id });
    }
  });
});
