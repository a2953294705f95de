// HA chaos with real parts: three hosts, each a real `corral serve` in a network namespace of
// its own with its own etcd member and fencer, a shared directory as the shared pool, one HA
// guest (the tiny guest, with a raw ext4 disk in the shared pool). An observer polls every
// process of the machine throughout and records any moment with two live QEMUs of the guest.
// - Host death: every process of the guest's host is SIGKILLed at once (serve, fencer, QEMU,
//   etcd) → the guest runs on another host; the dead host comes back and does not start it.
// - Partition: the owner's link is cut → its fencer kills the guest at least 2 s before its
//   lease expires at the cluster (seen by an etcd watch from another host), another host starts
//   it; the link heals → the partitioned host does not start it again.
// Afterwards the guest's disk, stopped, passes e2fsck -n.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Etcd3 } from 'etcd3';
import type { ClusterStatus, HaStatus, JoinTicket, VmInfo } from '../../electron/core/api/contract';
import { CLI, FIXTURE, tempDir, waitFor } from '../helpers';
import { corral } from './serve-process';

const NET = 20 + ((process.pid + 101) % 200);
const BRIDGE = `crhbr${NET}`;
const HOSTS = ['a', 'b', 'c'].map((name, i) => ({
  name,
  ns: `crh${NET}${name}`,
  veth: `crh${NET}${name}0`,
  address: `10.78.${NET}.${i + 1}`,
  data: tempDir(`corral-chaos-${name}-`),
  serve: null as ChildProcess | null,
  log: '',
}));
type HostT = (typeof HOSTS)[0];
const [A, B, C] = HOSTS as [HostT, HostT, HostT];
const SHARED = tempDir('corral-chaos-shared-');
const DISK = path.join(SHARED, 'g1.raw');
const GUEST = 'g1';
const DEADLINE_MS = 180_000;

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const tryIp = (...args: string[]) => {
  try {
    ip(...args);
  } catch {
    // already gone
  }
};

async function ok(h: HostT, args: string[]): Promise<string> {
  const r = await corral(h.data, args);
  if (r.code !== 0) throw new Error(`corral ${args.join(' ')} on ${h.name}: ${r.stderr}`);
  return r.stdout;
}
const status = async (h: HostT) => JSON.parse(await ok(h, ['cluster', 'status', '--json'])) as ClusterStatus;
const list = async (h: HostT) => JSON.parse(await ok(h, ['vm', 'list', '--json'])) as VmInfo[];
const haStatus = async (h: HostT) => JSON.parse(await ok(h, ['ha', 'status', '--json'])) as HaStatus;

function startServe(h: HostT): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', h.ns, process.execPath, CLI, 'serve', '--data', h.data, '--listen', '127.0.0.1:0'], {
    env: { ...process.env, CORRAL_ACCEL: 'tcg' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  h.serve = child;
  h.log = '';
  child.stdout!.on('data', (d: Buffer) => (h.log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (h.log += d.toString()));
  return waitFor(
    `corral serve on ${h.name}`,
    () => {
      if (child.exitCode !== null) throw new Error(`serve on ${h.name} exited: ${h.log}`);
      return /\n(No users|Users log in)/.test(h.log);
    },
    90_000,
  ).then(() => undefined);
}

/** Every live process of the machine: pid and argv (zombies left out). */
function processes(): Array<{ pid: number; argv: string[] }> {
  const out: Array<{ pid: number; argv: string[] }> = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      out.push({ pid: Number(d), argv: fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0') });
    } catch {
      // raced with an exiting process
    }
  }
  return out;
}

/** Live QEMUs of the guest (by its id in their argv), with the host whose data dir they run from. */
function guestQemus(vmId: string): Array<{ pid: number; host: string }> {
  return processes()
    .filter((p) => p.argv[0]?.includes('qemu-system') && p.argv.some((a) => a.includes(vmId)))
    .map((p) => ({ pid: p.pid, host: HOSTS.find((h) => p.argv.some((a) => a.includes(h.data)))?.name ?? '?' }));
}

/** The independent observer: polls the processes and keeps every moment two QEMUs of the guest lived. */
class Observer {
  doubles: string[] = [];
  polls = 0;
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly vmId: string) {}
  start(): void {
    this.timer = setInterval(() => {
      const q = guestQemus(this.vmId);
      this.polls++;
      if (q.length > 1) this.doubles.push(`${new Date().toISOString()}: ${q.map((x) => `${x.pid}@${x.host}`).join(', ')}`);
    }, 100);
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** Kills every process of a host at once: its serve, fencer, etcd member and QEMUs. */
function killHost(h: HostT): number {
  const pids = processes()
    .filter((p) => p.pid !== process.pid && p.argv.some((a) => a.includes(h.data)))
    .map((p) => p.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  return pids.length;
}

/** An etcd client with a host's certificate, from the root namespace (over the bridge). */
function etcdOf(h: HostT, via: HostT[]): Etcd3 {
  const dir = path.join(h.data, 'cluster');
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'cluster.json'), 'utf8')) as { ports: { etcdClient: number } };
  return new Etcd3({
    hosts: via.map((x) => `https://${x.address}:${cfg.ports.etcdClient}`),
    credentials: {
      rootCertificate: fs.readFileSync(path.join(dir, 'ca.pem')),
      certChain: fs.readFileSync(path.join(dir, 'host.pem')),
      privateKey: fs.readFileSync(path.join(dir, 'host-key.pem')),
    },
  });
}

async function whereRunning(from: HostT, not: string): Promise<string> {
  return waitFor(
    `${GUEST} running on a host other than ${not}`,
    async () => {
      const vm = (await list(from).catch(() => [])).find((v) => v.name === GUEST);
      const host = (vm as (VmInfo & { host?: { name: string } }) | undefined)?.host?.name;
      return vm?.state === 'running' && host && host !== not ? host : null;
    },
    DEADLINE_MS,
    500,
  );
}

const byName = (n: string) => HOSTS.find((h) => h.name === n)!;
let observer: Observer;
let vmId = '';

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
  // the shared pool: the guest's kernel, initrd and an ext4 disk, seen by every host at one path
  fs.copyFileSync(FIXTURE.kernel, path.join(SHARED, 'vmlinuz'));
  fs.copyFileSync(FIXTURE.initrd, path.join(SHARED, 'initrd'));
  execFileSync('mkfs.ext4', ['-q', '-F', DISK, '32M']);
  await Promise.all(HOSTS.map(startServe));
  for (const h of HOSTS) await ok(h, ['pool', 'add', 'shared', SHARED, '--shared']);
  const t = JSON.parse(await ok(A, ['cluster', 'init', '--name', 'a', '--address', A.address, '--json'])) as JoinTicket;
  for (const h of [B, C]) {
    const tk = h === B ? t : (JSON.parse(await ok(A, ['cluster', 'token', '--json'])) as JoinTicket);
    await ok(h, ['cluster', 'join', tk.url, '--token', tk.token, '--name', h.name, '--address', h.address]);
  }
  await waitFor(
    'three reporting hosts',
    async () => {
      const st = await status(A);
      return st.hosts.filter((h) => h.reporting).length === 3 && st.members.every((m) => m.started);
    },
    120_000,
    500,
  );
}, 400_000);

afterAll(async () => {
  observer?.stop();
  for (const h of HOSTS) killHost(h);
  for (const h of HOSTS) {
    tryIp('netns', 'del', h.ns);
    tryIp('link', 'del', h.veth);
  }
  tryIp('link', 'del', BRIDGE);
  for (const h of HOSTS) fs.rmSync(h.data, { recursive: true, force: true });
  fs.rmSync(SHARED, { recursive: true, force: true });
}, 60_000);

describe('HA chaos on three hosts', () => {
  it('makes a guest on the shared pool HA and runs it, guarded by its host', async () => {
    const sh = (f: string) => path.join(fs.realpathSync(SHARED), f);
    await ok(A, [
      'vm',
      'create',
      GUEST,
      '--kernel',
      sh('vmlinuz'),
      '--initrd',
      sh('initrd'),
      '--memory',
      '128M',
      '--disk-image',
      sh('g1.raw'),
      '--disk-format',
      'raw',
    ]);
    await ok(A, ['vm', 'set', GUEST, '--ha', 'on']);
    vmId = (await list(A)).find((v) => v.name === GUEST)!.id;
    await ok(A, ['vm', 'start', GUEST]);
    observer = new Observer(vmId);
    observer.start();
    const s = await waitFor(
      'the owner record',
      async () => (await haStatus(B)).vms.find((v) => v.name === GUEST && v.owner === 'a'),
      60_000,
      500,
    );
    expect(s.epoch).toBe(1);
    expect(guestQemus(vmId).map((q) => q.host)).toEqual(['a']);
  }, 300_000);

  it('restarts the guest elsewhere when its host dies, and the host coming back does not start it', async () => {
    const killedAt = Date.now();
    expect(killHost(A)).toBeGreaterThanOrEqual(3);
    const now = await whereRunning(B, 'a');
    const took = (Date.now() - killedAt) / 1000;
    const target = byName(now);
    const st = await haStatus(target);
    const g = st.vms.find((v) => v.name === GUEST)!;
    expect(g).toMatchObject({ owner: now, epoch: 2 });
    // the failover is in the guest's events with its timeline
    const events = JSON.parse(await ok(target, ['events', '--json'])) as Array<{ message: string }>;
    const story = events.find((e) => /HA failover from host a at epoch 2/.test(e.message));
    expect(story?.message).toMatch(/lease expired.*fenced.*reassigned.*started/);
    expect(took).toBeLessThan(DEADLINE_MS / 1000);

    await startServe(A);
    await waitFor('a back and holding its HA lease', async () => (await haStatus(A)).startBlocker === null, 150_000, 1000);
    // a's stale record is gone, the guest runs once, on the target
    expect((await ok(A, ['vm', 'list', '--json'])).length).toBeGreaterThan(0);
    const fromA = (await list(A)).filter((v) => v.name === GUEST);
    expect(fromA).toHaveLength(1);
    expect((fromA[0] as VmInfo & { host?: { name: string } }).host?.name).toBe(now);
    expect(guestQemus(vmId).map((q) => q.host)).toEqual([now]);
    expect(observer.doubles).toEqual([]);
  }, 400_000);

  it('fences a partitioned owner at least 2 s before its lease expires; after the heal it does not start the guest', async () => {
    const owner = byName((await haStatus(B)).vms.find((v) => v.name === GUEST)!.owner!);
    const others = HOSTS.filter((h) => h !== owner);
    const etcd = etcdOf(others[0]!, others);
    const watch = await etcd.watch().prefix('/corral/ha/alive/').create();
    let expiredAt = 0;
    watch.on('delete', (kv) => {
      if (kv.key.toString().endsWith(JSON.parse(fs.readFileSync(path.join(owner.data, 'cluster', 'cluster.json'), 'utf8')).hostId))
        expiredAt = Date.now();
    });
    try {
      ip('link', 'set', owner.veth, 'down');
      const now = await whereRunning(others[0]!, owner.name);
      expect(now).not.toBe(owner.name);
      const fence = JSON.parse(fs.readFileSync(path.join(owner.data, 'ha', 'fenced.json'), 'utf8')) as {
        at: number;
        killed: Array<{ vm: string }>;
      };
      expect(fence.killed.map((k) => k.vm)).toEqual([GUEST]);
      await waitFor('the lease expiry seen by the watch', () => expiredAt > 0, 60_000, 100);
      const marginMs = expiredAt - fence.at;
      console.log(`partition: fenced ${marginMs} ms before the lease expired at the cluster`);
      expect(marginMs).toBeGreaterThanOrEqual(2000);
    } finally {
      ip('link', 'set', owner.veth, 'up');
      await watch.cancel().catch(() => undefined);
      etcd.close();
    }
    // healed: the owner takes a fresh lease, finds the guest owned elsewhere, never starts it
    await waitFor(`${owner.name} back with a fresh lease`, async () => (await haStatus(owner)).startBlocker === null, 120_000, 1000);
    await new Promise((r) => setTimeout(r, 5000));
    const q = guestQemus(vmId);
    expect(q).toHaveLength(1);
    expect(q[0]!.host).not.toBe(owner.name);
    const mine = (await list(owner)).find((v) => v.name === GUEST) as VmInfo & { host?: { name: string } };
    expect(mine.host?.name).not.toBe(owner.name);
    expect(observer.doubles).toEqual([]);
    expect(observer.polls).toBeGreaterThan(100);
  }, 400_000);

  it("leaves the guest's disk clean: e2fsck -n passes once it is stopped", async () => {
    const st = await haStatus(B);
    const owner = byName(st.vms.find((v) => v.name === GUEST)!.owner!);
    await ok(owner, ['vm', 'kill', GUEST]);
    await waitFor('no QEMU of the guest', () => guestQemus(vmId).length === 0, 60_000, 200);
    observer.stop();
    expect(observer.doubles).toEqual([]);
    execFileSync('e2fsck', ['-n', '-f', DISK], { stdio: 'pipe' });
  }, 120_000);
});
