// NICs on real QEMU with the real guest: a passt forward reaches a service in the guest and
// survives a SIGKILLed host; VMs on one private network reach each other and nothing else.
import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BOOT_MS, FIXTURE, freePort, qemuPidsFor, tempDir, waitFor } from '../helpers';
import { guestArgs, TestHost } from './host-harness';
import { corral, ServeProcess } from './serve-process';

/** The guest's page through a host port, or null while nothing answers there. */
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

function pidsOf(data: string, file: string): number[] {
  const dir = path.join(data, 'vms');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).flatMap((id) => qemuPidsFor(path.join(dir, id, 'run', file)));
}

function passtPids(data: string): number[] {
  const dir = path.join(data, 'vms');
  return fs.readdirSync(dir).flatMap((id) => {
    const f = path.join(dir, id, 'run', 'passt-net0.pid');
    return fs.existsSync(f) ? [Number(fs.readFileSync(f, 'utf8').trim())] : [];
  });
}

describe('passt', () => {
  const data = tempDir();
  let serve: ServeProcess | null = null;
  afterAll(async () => {
    await serve?.stop('SIGKILL');
    for (const pid of [...pidsOf(data, 'qemu.pid'), ...passtPids(data)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });

  it('forwards a host port to a service in the guest, and keeps it through a SIGKILLed host', async () => {
    serve = await ServeProcess.start(data);
    const port = await freePort();
    const boot = ['--memory', '192M', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd];
    const made = await corral(data, [
      'vm',
      'create',
      'web',
      ...boot,
      '--append',
      'console=ttyS0 quiet corral.http=80',
      '--forward',
      `tcp:${port}:80`,
    ]);
    expect(made.stderr).toBe('');
    const shown = JSON.parse((await corral(data, ['vm', 'show', 'web', '--json'])).stdout) as {
      config: { nics: Array<{ kind: string; mac: string; forwards: unknown[] }> };
    };
    // passt is installed here: new VMs get it, with the forward on that NIC
    expect(shown.config.nics).toEqual([
      expect.objectContaining({
        id: 'net0',
        kind: 'passt',
        mac: expect.stringMatching(/^52:54:00:/),
        forwards: [expect.objectContaining({ hostPort: port, guestPort: 80 })],
      }),
    ]);
    expect((await corral(data, ['vm', 'start', 'web'])).code).toBe(0);
    const page = await waitFor('the guest page through passt', () => fetchPage(port), BOOT_MS, 1000);
    expect(page).toMatch(/corral-guest/);
    const [qemu] = pidsOf(data, 'qemu.pid');
    const [passt] = passtPids(data);
    expect(passt).toBeGreaterThan(0);

    await serve.stop('SIGKILL');
    serve = null;
    // no host: the guest and its network go on
    expect(await fetchPage(port)).toMatch(/corral-guest/);
    serve = await ServeProcess.start(data);
    await waitFor(
      'the VM reattached',
      async () => JSON.parse((await corral(data, ['vm', 'show', 'web', '--json'])).stdout).state === 'running',
      30_000,
    );
    expect(pidsOf(data, 'qemu.pid')).toEqual([qemu]);
    expect(passtPids(data)).toEqual([passt]);
    expect(await fetchPage(port)).toMatch(/corral-guest/);

    // a passt that ends while the guest runs is an event, and the guest runs on
    process.kill(passt!, 'SIGKILL');
    await waitFor(
      'an event about passt',
      async () => (await corral(data, ['events'])).stdout.match(/passt for net0 .*ended while the guest ran/),
      30_000,
      500,
    );
    expect(JSON.parse((await corral(data, ['vm', 'show', 'web', '--json'])).stdout).state).toBe('running');
    expect((await corral(data, ['vm', 'kill', 'web'])).code).toBe(0);
  });
});

describe('private networks', () => {
  let t: TestHost;
  afterAll(async () => {
    for (const vm of (await t?.call('vm.list', {})) ?? []) if (vm.pid) process.kill(vm.pid, 'SIGKILL');
    await t?.close();
  });

  it('joins VMs of one network and nothing else', async () => {
    t = await TestHost.start();
    const lab = `lab-${randomBytes(3).toString('hex')}`;
    const other = `other-${randomBytes(3).toString('hex')}`;
    const nic = (network: string) => ({ nics: [{ kind: 'private' as const, network }], memoryMiB: 192 });
    const ids: Record<string, string> = {};
    for (const [name, network] of [
      ['a', lab],
      ['b', lab],
      ['c', other],
    ] as const) {
      const vm = await t.call('vm.create', guestArgs(name, nic(network)));
      expect(vm.config.nics[0]).toMatchObject({ kind: 'private', network, forwards: [] });
      await t.call('vm.start', { vm: vm.id });
      ids[name] = await t.attach(vm.id);
    }
    // a service on the host: no guest of a private network may reach it
    const hits: string[] = [];
    const trap = net.createServer((c) => {
      hits.push(String(c.remoteAddress));
      c.destroy();
    });
    const trapPort = await freePort();
    await new Promise<void>((resolve) => trap.listen(trapPort, '0.0.0.0', resolve));
    try {
      const addr = { a: '10.77.0.1', b: '10.77.0.2', c: '10.77.0.3' };
      for (const name of ['a', 'b', 'c'] as const) {
        await t.waitSerial(ids[name]!, FIXTURE.prompt, BOOT_MS);
        await t.type(ids[name]!, `killall udhcpc; ip addr add ${addr[name]}/24 dev eth0; ip link set eth0 up; echo "up-${name}=$?"\n`);
        await t.waitSerial(ids[name]!, `up-${name}=0`, 60_000);
      }
      const run = async (name: 'a' | 'b' | 'c', cmd: string, tag: string): Promise<string> => {
        await t.type(ids[name]!, `${cmd}; echo "${tag}=$?"\n`);
        await t.waitSerial(ids[name]!, new RegExp(`${tag}=\\d`), 120_000);
        return new RegExp(`${tag}=(\\d+)`).exec(t.serial.get(ids[name]!)!.replace(`${tag}=$?`, ''))![1]!;
      };
      expect(await run('b', 'ping -c 3 -W 5 10.77.0.1 >/dev/null 2>&1', 'ping-ab')).toBe('0');
      expect(await run('a', 'ping -c 3 -W 5 10.77.0.2 >/dev/null 2>&1', 'ping-ba')).toBe('0');
      // another network sees neither
      expect(await run('c', 'ping -c 2 -W 3 10.77.0.1 >/dev/null 2>&1', 'ping-ca')).not.toBe('0');
      expect(await run('c', 'ping -c 2 -W 3 10.77.0.2 >/dev/null 2>&1', 'ping-cb')).not.toBe('0');
      // nothing routes out: not the host's loopback gateway, not its own address
      await run('a', `ip route add default dev eth0; nc -w 3 10.0.2.2 ${trapPort} </dev/null`, 'out-a1');
      await run('a', `nc -w 3 127.0.0.1 ${trapPort} </dev/null`, 'out-a2');
      expect(hits).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => trap.close(() => resolve()));
    }
  });
});

describe('bridges', () => {
  // a bridge on the host with a veth whose peer lives in a namespace made here: the "LAN"
  const tag = randomBytes(3).toString('hex');
  const br = `crlbr${tag}`;
  const ns = `crlns${tag}`;
  const acl = '/etc/qemu/bridge.conf';
  const aclBefore = fs.existsSync(acl) ? fs.readFileSync(acl, 'utf8') : null;
  let t: TestHost;
  const sh = (cmd: string) => execSync(cmd, { stdio: 'pipe' }).toString();

  afterAll(async () => {
    for (const vm of (await t?.call('vm.list', {})) ?? []) if (vm.pid) process.kill(vm.pid, 'SIGKILL');
    await t?.close();
    for (const cmd of [`ip netns del ${ns}`, `ip link del ${br}`]) {
      try {
        sh(cmd);
      } catch {
        // never made
      }
    }
    if (aclBefore === null) fs.rmSync(acl, { force: true });
    else fs.writeFileSync(acl, aclBefore);
  });

  it('says what to run for a missing bridge or ACL, then puts the guest on the bridge', async () => {
    t = await TestHost.start();
    const vm = await t.call('vm.create', guestArgs('lan', { memoryMiB: 192, nics: [{ kind: 'bridge', bridge: br }] }));
    await expect(t.call('vm.start', { vm: vm.id })).rejects.toThrow(new RegExp(`no bridge "${br}".*ip link add ${br} type bridge`));

    sh(`ip link add ${br} type bridge && ip link set ${br} up`);
    sh(`ip netns add ${ns} && ip link add v${tag} type veth peer name p${tag}`);
    sh(`ip link set v${tag} master ${br} up && ip link set p${tag} netns ${ns}`);
    sh(`ip -n ${ns} addr add 10.88.0.1/24 dev p${tag} && ip -n ${ns} link set p${tag} up && ip -n ${ns} link set lo up`);
    await expect(t.call('vm.start', { vm: vm.id })).rejects.toThrow(new RegExp(`does not allow bridge "${br}".*allow ${br}`));

    fs.mkdirSync(path.dirname(acl), { recursive: true });
    fs.appendFileSync(acl, `allow ${br}\n`);
    expect((await t.call('network.list', {})).bridges).toContainEqual({ name: br, allowed: true, vms: ['lan'] });
    await t.call('vm.start', { vm: vm.id });
    await t.attach(vm.id);
    await t.waitSerial(vm.id, FIXTURE.prompt, BOOT_MS);
    await t.type(
      vm.id,
      `killall udhcpc; ip addr add 10.88.0.2/24 dev eth0; ip link set eth0 up; ping -c 3 -W 5 10.88.0.1 >/dev/null 2>&1; echo "ping-ns=$?"\n`,
    );
    await t.waitSerial(vm.id, /ping-ns=\d/, 120_000);
    expect(/ping-ns=(\d+)/.exec(t.serial.get(vm.id)!.replace('ping-ns=$?', ''))![1]).toBe('0');
    // and the namespace reaches the guest, by the MAC Corral gave it
    expect(sh(`ip netns exec ${ns} busybox ping -c 2 -W 5 10.88.0.2`)).toMatch(/2 packets received/);
    expect(sh(`ip -n ${ns} neigh show 10.88.0.2`)).toContain(vm.config.nics[0]!.mac);
    // the host finds the guest's address by that MAC in its own neighbour table
    sh(`ip addr add 10.88.0.254/24 dev ${br} && busybox ping -c 2 -W 5 10.88.0.2`);
    expect(await t.call('vm.addresses', { vm: vm.id })).toEqual([
      expect.objectContaining({ nic: 'net0', addresses: ['10.88.0.2'], source: 'host' }),
    ]);
  });
});

describe('NICs on a running guest', () => {
  let t: TestHost;
  afterAll(async () => {
    for (const vm of (await t?.call('vm.list', {})) ?? []) if (vm.pid) process.kill(vm.pid, 'SIGKILL');
    await t?.close();
  });

  it('hot-adds a NIC the guest sees, and leaves what needs a restart pending', async () => {
    t = await TestHost.start();
    const vm = await t.call('vm.create', guestArgs('plug', { memoryMiB: 192, nics: [] }));
    await t.call('vm.start', { vm: vm.id });
    await t.attach(vm.id);
    await t.waitSerial(vm.id, FIXTURE.prompt, BOOT_MS);
    const ifaces = async (tag: string) => {
      await t.type(vm.id, `echo "${tag}:$(ls /sys/class/net | tr '\\n' ' ')."\n`);
      await t.waitSerial(vm.id, new RegExp(`${tag}:[a-z0-9 ]*\\.`), 60_000);
      return new RegExp(`${tag}:([a-z0-9 ]*)\\.`).exec(t.serial.get(vm.id)!)![1]!.trim().split(' ');
    };
    expect(await ifaces('before')).toEqual(['lo']);

    const r = await t.call('vm.update', { vm: vm.id, nics: [{ kind: 'private', network: `hp-${randomBytes(3).toString('hex')}` }] });
    expect(r.notLive).toEqual([]);
    expect(r.pending).toEqual([]);
    await waitFor('the guest to see the new NIC', async () => (await ifaces(`after${Date.now()}`)).includes('eth0'), 60_000, 1000);
    expect(r.booted).not.toBeNull();

    // a passt NIC needs its passt handed over at start: pending, saying why
    const p = await t.call('vm.update', { vm: vm.id, nics: [...r.config.nics, { kind: 'passt' }] });
    expect(p.notLive).toEqual([{ field: 'nics', why: expect.stringMatching(/passt NIC can only be added while the VM is stopped/) }]);
    expect(p.pending).toContain('nics');
  });
});
