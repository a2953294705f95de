// Moving VMs between the hosts of a cluster: three real `corral serve` processes, each in a
// network namespace of its own with its own etcd member, formed with init/join. A running guest
// moves A→B by host name over the peer API (its count and uptime go on, one QEMU, TLS from the
// cluster CA on the stream); actions from A on VMs of other hosts are carried out there; B is
// evacuated (each VM as its evacuate setting says, B refuses new VMs) and restored. A link cut
// mid-migration ends it on the source within seconds, and the target drops the arrival alone.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArgsIn, ClusterStatus, JoinTicket, MethodName, MigrationProgress, Result, VmInfo } from '../../electron/core/api/contract';
import { dataLayout, vmFiles } from '../../electron/core/paths';
import { ControlClient } from '../../electron/cli/client';
import { BOOT_MS, CLI, endProcessesOf, FIXTURE, FIXTURE_DIR, qemuPidsFor, tempDir, waitFor } from '../helpers';
import { corral } from './serve-process';

// a subnet and interface names of this run's own (names are at most 15 characters)
const NET = 20 + (process.pid % 200);
const BRIDGE = `crmbr${NET}`;
const HOSTS = ['a', 'b', 'c'].map((name, i) => ({
  name,
  ns: `crm${NET}${name}`,
  veth: `crm${NET}${name}0`,
  address: `10.78.${NET}.${i + 1}`,
  data: tempDir(`corral-move-${name}-`),
  serve: null as ChildProcess | null,
  log: '',
}));
type TestHost = (typeof HOSTS)[0];
const [A, B, C] = HOSTS as [TestHost, TestHost, TestHost];
const shared = tempDir('corral-move-shared-');

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const tryIp = (...args: string[]) => {
  try {
    ip(...args);
  } catch {
    // already gone
  }
};

async function ok(h: TestHost, args: string[]): Promise<string> {
  const r = await corral(h.data, args);
  if (r.code !== 0) throw new Error(`corral ${args.join(' ')} on ${h.name}: ${r.stderr}`);
  return r.stdout;
}
const list = async (h: TestHost) => JSON.parse(await ok(h, ['vm', 'list', '--json'])) as VmInfo[];
const status = async (h: TestHost) => JSON.parse(await ok(h, ['cluster', 'status', '--json'])) as ClusterStatus;

/** One call of the contract on a host, over its control socket (reachable from any namespace). */
async function api<M extends MethodName>(h: TestHost, method: M, args: ArgsIn<M>): Promise<Result<M>> {
  const c = await ControlClient.connect(dataLayout(h.data).controlSocket, h.data);
  try {
    return await c.call(method, args);
  } finally {
    c.close();
  }
}

function startServe(h: TestHost): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', h.ns, process.execPath, CLI, 'serve', '--data', h.data, '--listen', '127.0.0.1:0'], {
    env: { ...process.env, CORRAL_ACCEL: 'tcg' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  h.serve = child;
  child.stdout!.on('data', (d: Buffer) => (h.log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (h.log += d.toString()));
  return waitFor(
    `corral serve on ${h.name}`,
    () => {
      if (child.exitCode !== null) throw new Error(`serve on ${h.name} exited: ${h.log}`);
      return /\n(No users|Users log in)/.test(h.log);
    },
    60_000,
  ).then(() => undefined);
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const COUNTER = 'i=0; while :; do i=$((i+1)); echo "TICK $i $(cut -d. -f1 /proc/uptime)"; sleep 1; done &';
const serial = async (h: TestHost, vm: string) =>
  Buffer.from((await api(h, 'serial.log', { vm, tailBytes: 256 * 1024 })).data, 'base64').toString();
const ticks = (text: string) => [...text.matchAll(/TICK (\d+) (\d+)/g)].map((m) => ({ n: Number(m[1]), up: Number(m[2]) }));
const qemus = (h: TestHost, id: string) => qemuPidsFor(vmFiles(dataLayout(h.data), id).pidFile);
/** The host each VM of the cluster is on, as A's inventory says. */
const whereIs = async (name: string) => (await list(A)).find((v) => v.name === name)?.host?.name ?? null;

beforeAll(async () => {
  ip('link', 'add', BRIDGE, 'type', 'bridge');
  ip('addr', 'add', `10.78.${NET}.254/24`, 'dev', BRIDGE);
  ip('link', 'set', BRIDGE, 'up');
  for (const h of HOSTS) {
    ip('netns', 'add', h.ns);
    ip('link', 'add', h.veth, 'type', 'veth', 'peer', 'name', `${h.veth}p`);
    ip('link', 'set', `${h.veth}p`, 'netns', h.ns);
    ip('-n', h.ns, 'link', 'set', `${h.veth}p`, 'name', 'eth0');
    ip('-n', h.ns, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0');
    ip('-n', h.ns, 'link', 'set', 'eth0', 'up');
    ip('-n', h.ns, 'link', 'set', 'lo', 'up');
    ip('link', 'set', h.veth, 'master', BRIDGE, 'up');
  }
  await Promise.all(HOSTS.map(startServe));
  for (const h of HOSTS) {
    await ok(h, ['pool', 'add', 'fixtures', FIXTURE_DIR]);
    await ok(h, ['pool', 'add', 'shared', shared]);
    await api(h, 'host.settings', { monitor: true });
  }
  await ok(A, ['cluster', 'init', '--name', 'a', '--address', A.address, '--json']);
  for (const h of [B, C]) {
    const t = JSON.parse(await ok(A, ['cluster', 'token', '--json'])) as JoinTicket;
    await ok(h, ['cluster', 'join', t.url, '--token', t.token, '--name', h.name, '--address', h.address]);
  }
  await waitFor('three reporting hosts', async () => (await status(A)).hosts.filter((h) => h.reporting).length === 3, 120_000, 500);
}, 400_000);

afterAll(async () => {
  for (const h of HOSTS) {
    const child = h.serve;
    if (!child || child.exitCode !== null) continue;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 30_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  for (const h of HOSTS) {
    // guests and the fencer outlive a stopped serve by design
    endProcessesOf(h.data);
    tryIp('netns', 'del', h.ns);
    tryIp('link', 'del', h.veth);
    fs.rmSync(h.data, { recursive: true, force: true });
  }
  tryIp('link', 'del', BRIDGE);
  fs.rmSync(shared, { recursive: true, force: true });
}, 120_000);

describe('moving VMs between the hosts of a cluster', () => {
  let moverId = '';
  let lastTick = { n: 0, up: 0 };

  it(
    'migrates a running guest A→B by host name: it keeps counting, one QEMU, TLS from the cluster CA',
    async () => {
      const image = path.join(shared, 'mover.qcow2');
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '32M']);
      const boot = ['--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--append', 'console=ttyS0 quiet'];
      await ok(A, ['vm', 'create', 'mover', ...boot, '--memory', '128M', '--disk-image', image, '--restart', 'always', '--host', 'a']);
      await ok(A, ['vm', 'start', 'mover']);
      await waitFor('the prompt', async () => (await serial(A, 'mover')).includes(FIXTURE.prompt), BOOT_MS, 500);
      await api(A, 'serial.write', { vm: 'mover', data: b64(`${COUNTER}\n`) });
      await waitFor('the count', async () => ticks(await serial(A, 'mover')).length >= 2, 60_000, 500);
      moverId = (await api(A, 'vm.get', { vm: 'mover' })).id;

      // refusals name what is wrong and change nothing
      const nowhere = await corral(A.data, ['vm', 'migrate', 'mover', 'nosuchhost']);
      expect(nowhere.stderr).toMatch(/there is no host "nosuchhost" in the cluster \(hosts: .*\b(a|b|c)\b/);
      const here = await corral(A.data, ['vm', 'migrate', 'mover', 'a']);
      expect(here.stderr).toMatch(/on host "a" already/);

      // C, which takes no part in the move, follows it too (its UI shows the VM moving)
      const watchC = await ControlClient.connect(dataLayout(C.data).controlSocket, C.data);
      const seenOnC: MigrationProgress[] = [];
      watchC.on('migration.progress', (p) => seenOnC.push(p));
      await watchC.call('events.subscribe', {});

      const before = ticks(await serial(A, 'mover')).at(-1)!;
      const moved = await corral(A.data, ['vm', 'migrate', 'mover', 'b']);
      expect(moved.stderr).not.toMatch(/^corral:/m);
      expect(moved.code).toBe(0);
      expect(moved.stdout).toMatch(/mover: moved to b \(live, shared storage\) in [\d.]+ s, paused \d+ ms/);
      try {
        await waitFor('C to hear the move end', () => seenOnC.some((p) => p.vmId === moverId && p.phase === 'done'), 30_000, 200);
      } finally {
        watchC.close();
      }
      expect(seenOnC.find((p) => p.phase === 'done')).toMatchObject({ vmName: 'mover' });

      const onB = await api(B, 'vm.get', { vm: 'mover' });
      expect(onB.id).toBe(moverId);
      expect(onB.state).toBe('running');
      // the restart policy travels with the VM
      expect(onB.config.restart).toBe('always');
      const after = await waitFor('the count on B', async () => {
        const t = ticks(await serial(B, 'mover'));
        return t.length >= 2 ? t : null;
      });
      expect(after[0]!.n).toBeGreaterThanOrEqual(before.n);
      expect(after[0]!.up).toBeGreaterThanOrEqual(before.up);
      expect(await serial(B, 'mover')).not.toContain(FIXTURE.banner);
      lastTick = after.at(-1)!;
      expect(qemus(A, moverId)).toEqual([]);
      expect(qemus(B, moverId)).toEqual([onB.pid]);
      expect(qemus(C, moverId)).toEqual([]);
      // B's QEMU took the stream with TLS credentials (the cluster host certificates)
      const params = await api(B, 'monitor.exec', { vm: 'mover', command: 'info migrate_parameters' });
      expect(params.output).toMatch(/tls-creds: '?mig-tls/);
      // the inventory follows: every host lists it on b, the name stays claimed
      for (const h of [A, C]) await waitFor(`${h.name} to list it on b`, async () => (await whereIs('mover')) === 'b', 30_000, 500);
      const dup = await corral(C.data, ['vm', 'create', 'mover', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd]);
      expect(dup.stderr).toMatch(/a VM named "mover" already exists in the cluster/);
    },
    BOOT_MS + 300_000,
  );

  it('carries out snapshots, shares and refusals of a VM on another host where it is', async () => {
    await ok(C, ['vm', 'create', 'spare', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--disk', '16M', '--host', 'c']);
    await waitFor("C's VM in A's inventory", async () => (await whereIs('spare')) === 'c', 30_000, 500);
    // asked on A, done on C
    await ok(A, ['vm', 'snapshot', 'create', 'spare', 'before']);
    expect((await api(C, 'snapshot.list', { vm: 'spare' })).snapshots.map((s) => s.name)).toContain('before');
    const folder = tempDir('corral-move-share-');
    await ok(A, ['vm', 'share', 'add', 'spare', folder, '--tag', 'data', '--via', '9p']);
    expect((await api(C, 'vm.get', { vm: 'spare' })).config.shares.map((s) => s.tag)).toEqual(['data']);
    const audit = JSON.parse(await ok(C, ['audit', '--json'])) as Array<{ who: string; method: string }>;
    expect(audit.find((e) => e.method === 'snapshot.create')?.who).toBe('host:a');
    expect(audit.find((e) => e.method === 'vm.share.add')?.who).toBe('host:a');
    await ok(A, ['vm', 'share', 'remove', 'spare', 'data']);
    fs.rmSync(folder, { recursive: true, force: true });

    // a target that cannot run the VM refuses before anything moves, naming what it lacks
    await ok(C, [
      'vm',
      'create',
      'bridged',
      '--kernel',
      FIXTURE.kernel,
      '--initrd',
      FIXTURE.initrd,
      '--nic',
      'bridge:crmnobr0',
      '--host',
      'c',
    ]);
    const refused = await corral(A.data, ['vm', 'migrate', 'bridged', 'a']);
    expect(refused.stderr).toMatch(/cannot run "bridged": net0: there is no bridge "crmnobr0" on this host/);
    expect(await whereIs('bridged')).toBe('c');
    expect((await list(A)).filter((v) => v.host?.name === 'a').map((v) => v.name)).toEqual([]);
    await ok(A, ['vm', 'delete', 'bridged']);
  }, 180_000);

  it('evacuates B (each VM as its setting says; B takes no VMs) and restores it with its VMs', async () => {
    await ok(B, ['vm', 'create', 'cold', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--memory', '64M', '--host', 'b']);
    await ok(B, ['vm', 'create', 'stays', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--memory', '64M', '--host', 'b']);
    await ok(B, ['vm', 'set', 'stays', '--evacuate', 'stop']);

    const ev = await corral(A.data, ['host', 'evacuate', 'b', '--json']);
    expect(ev.code, ev.stderr).toBe(0);
    const rec = JSON.parse(ev.stdout) as { vms: Array<{ name: string; action: string; to: string | null }> };
    const by = Object.fromEntries(rec.vms.map((v) => [v.name, v]));
    expect(by.mover).toMatchObject({ action: 'migrated' });
    expect(by.cold).toMatchObject({ action: 'moved' });
    expect(by.stays).toMatchObject({ action: 'stopped', to: null });
    expect(['a', 'c']).toContain(by.mover!.to);

    // the guest still counts where it went, one QEMU in all
    const there = by.mover!.to === 'a' ? A : C;
    const vm = await api(there, 'vm.get', { vm: 'mover' });
    expect(vm.state).toBe('running');
    expect([...qemus(A, moverId), ...qemus(B, moverId), ...qemus(C, moverId)]).toEqual([vm.pid]);
    const t = await waitFor('the count after the evacuation', async () => ticks(await serial(there, 'mover')).at(-1) ?? null);
    expect(t.up).toBeGreaterThanOrEqual(lastTick.up);
    expect((await list(B)).filter((v) => v.host?.name === 'b').map((v) => v.name)).toEqual(['stays']);

    // in maintenance: shown, and no VM comes to B
    expect((await status(C)).hosts.find((h) => h.name === 'b')?.maintenance).toBe(true);
    const create = await corral(B.data, ['vm', 'create', 'late', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--host', 'b']);
    expect(create.stderr).toMatch(/host "b" is in maintenance .* until corral host restore b/);
    // placed automatically, it goes to a host that takes VMs
    await ok(B, ['vm', 'create', 'placed', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--memory', '64M']);
    expect(['a', 'c']).toContain(await whereIs('placed'));
    await ok(A, ['vm', 'delete', 'placed']);
    const incoming = await corral(A.data, ['vm', 'migrate', 'cold', 'b']);
    expect(incoming.stderr).toMatch(/"cold" cannot move here: host "b" is in maintenance/);

    const back = await corral(C.data, ['host', 'restore', 'b', '--bring-back', '--json']);
    expect(back.code, back.stderr).toBe(0);
    expect((JSON.parse(back.stdout) as { returned: Array<{ name: string }> }).returned.map((v) => v.name).sort()).toEqual([
      'cold',
      'mover',
      'stays',
    ]);
    for (const name of ['mover', 'cold', 'stays']) await waitFor(`${name} on b`, async () => (await whereIs(name)) === 'b', 30_000, 500);
    const home = await api(B, 'vm.get', { vm: 'mover' });
    expect(home.state).toBe('running');
    expect([...qemus(A, moverId), ...qemus(B, moverId), ...qemus(C, moverId)]).toEqual([home.pid]);
    expect((await api(B, 'vm.get', { vm: 'stays' })).state).toBe('stopped');
    expect((await status(A)).hosts.find((h) => h.name === 'b')?.maintenance).toBe(false);
    const t2 = await waitFor('the count back on B', async () => ticks(await serial(B, 'mover')).at(-1) ?? null);
    expect(t2.up).toBeGreaterThanOrEqual(t.up);
  }, 600_000);

  it('a link cut mid-migration: the source gives up and the guest runs on there; the target drops the arrival', async () => {
    // a slow link to C (so that the move is still copying when the cable is pulled), then no link
    execFileSync('tc', ['qdisc', 'add', 'dev', C.veth, 'root', 'tbf', 'rate', '2mbit', 'burst', '32kbit', 'latency', '400ms']);
    let cut = false;
    const watchB = await ControlClient.connect(dataLayout(B.data).controlSocket, B.data);
    try {
      const copying = new Promise<void>((resolve) =>
        watchB.on('migration.progress', (p) => {
          if (p.vmId === moverId && p.ramTransferred > 1024 * 1024) resolve();
        }),
      );
      await watchB.call('events.subscribe', {});
      const started = Date.now();
      const move = corral(B.data, ['vm', 'migrate', 'mover', 'c']);
      await copying;
      ip('link', 'set', C.veth, 'down');
      const cutAt = Date.now();
      cut = true;
      const failed = await move;
      const gaveUp = Date.now() - cutAt;
      // well before TCP would give up (many minutes): a stalled stream, or a target that no longer answers
      expect(Date.now() - started).toBeLessThan(150_000);
      expect(failed.code).not.toBe(0);
      expect(failed.stderr).toMatch(
        /the migration of "mover" to c failed: (the migration stream made no progress for 30 s|the target host has not answered for \d+ s).*; it runs here still/,
      );
      // the guest runs on at B, counting, one QEMU
      const vm = await api(B, 'vm.get', { vm: 'mover' });
      expect(vm.state).toBe('running');
      const last = ticks(await serial(B, 'mover')).at(-1)!;
      await waitFor('the count going on at B', async () => (ticks(await serial(B, 'mover')).at(-1)?.n ?? 0) > last.n, 30_000, 500);
      expect(qemus(B, moverId)).toEqual([vm.pid]);
      // C, still cut off, drops the arrival by itself once its source has gone quiet
      const arriving = async () => (await list(C)).some((v) => v.id === moverId && v.state === 'incoming');
      await waitFor('C to drop the arrival', async () => !(await arriving()) && qemus(C, moverId).length === 0, 120_000, 1000);
      console.log(`link cut: b gave up ${gaveUp / 1000} s after the cut, c dropped the arrival ${(Date.now() - cutAt) / 1000} s after it`);
      const events = await api(C, 'events.list', { limit: 500 });
      expect(events.map((e) => e.message)).toContainEqual(
        expect.stringMatching(/^Arrival abandoned: its source host has not been heard from for 60 s/),
      );
    } finally {
      watchB.close();
      if (cut) ip('link', 'set', C.veth, 'up');
      execFileSync('tc', ['qdisc', 'del', 'dev', C.veth, 'root']);
    }
    // the link back: every host lists the guest on b, where it runs
    for (const h of HOSTS)
      await waitFor(
        `${h.name} to list mover on b`,
        async () => (await list(h)).find((v) => v.name === 'mover')?.host?.name === 'b',
        120_000,
        1000,
      );
  }, 400_000);
});
