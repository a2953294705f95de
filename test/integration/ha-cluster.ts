// Three Corral hosts on one machine for HA tests and the HA bench: each a real `corral serve`
// in a network namespace of its own (veth pairs on a bridge made here), with its own etcd member
// and fencer, and a shared directory every host adds as the shared pool "shared".
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import type { ClusterStatus, HaStatus, JoinTicket, VmInfo } from '../../electron/core/api/contract';
import { CLI, FIXTURE, tempDir, waitFor } from '../helpers';
import { corral } from './serve-process';

// its own 10.79.x subnet: tests on other bridges use 10.77.x and 10.78.x, so no two can share one
export const NET = 20 + ((process.pid + 101) % 200);
const BRIDGE = `crhbr${NET}`;
export const HOSTS = ['a', 'b', 'c'].map((name, i) => ({
  name,
  ns: `crh${NET}${name}`,
  veth: `crh${NET}${name}0`,
  address: `10.79.${NET}.${i + 1}`,
  data: tempDir(`corral-chaos-${name}-`),
  serve: null as ChildProcess | null,
  log: '',
}));
export type HostT = (typeof HOSTS)[0];
export const [A, B, C] = HOSTS as [HostT, HostT, HostT];
export const SHARED = tempDir('corral-chaos-shared-');
/** Each host's serve output (across restarts) and, at teardown, its fencer's and etcd's: kept when a test failed. */
export const LOGS = tempDir('corral-chaos-logs-');
const serveLog = (h: HostT) => path.join(LOGS, `${h.name}.serve.log`);
export const DEADLINE_MS = 180_000;

export const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const tryIp = (...args: string[]) => {
  try {
    ip(...args);
  } catch {
    // already gone
  }
};

export async function ok(h: HostT, args: string[]): Promise<string> {
  const r = await corral(h.data, args);
  if (r.code !== 0) throw new Error(`corral ${args.join(' ')} on ${h.name}: ${r.stderr}`);
  return r.stdout;
}
export const status = async (h: HostT) => JSON.parse(await ok(h, ['cluster', 'status', '--json'])) as ClusterStatus;
export const list = async (h: HostT) => JSON.parse(await ok(h, ['vm', 'list', '--json'])) as VmInfo[];
export const haStatus = async (h: HostT) => JSON.parse(await ok(h, ['ha', 'status', '--json'])) as HaStatus;

export function startServe(h: HostT): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', h.ns, process.execPath, CLI, 'serve', '--data', h.data, '--listen', '127.0.0.1:0'], {
    env: { ...process.env, CORRAL_ACCEL: 'tcg' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  h.serve = child;
  h.log = '';
  const keep = (d: Buffer) => {
    h.log += d.toString();
    // serve prints no times: stamp each line as it arrives, to line it up with the fencer's log
    const at = new Date().toISOString();
    fs.appendFileSync(serveLog(h), d.toString().replace(/^(?=.)/gm, `${at} `));
  };
  fs.appendFileSync(serveLog(h), `==== ${new Date().toISOString()} corral serve started\n`);
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
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
export function guestQemus(vmId: string): Array<{ pid: number; host: string }> {
  return processes()
    .filter((p) => p.argv[0]?.includes('qemu-system') && p.argv.some((a) => a.includes(vmId)))
    .map((p) => ({ pid: p.pid, host: HOSTS.find((h) => p.argv.some((a) => a.includes(h.data)))?.name ?? '?' }));
}

/** The independent observer: polls the processes and keeps every moment two QEMUs of the guest lived. */
export class Observer {
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
export function killHost(h: HostT): number {
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

/** The pid of a host's `corral serve` itself (not its fencer, etcd or QEMUs). */
export function servePid(h: HostT): number {
  const p = processes().find((x) => x.argv.includes('serve') && x.argv.includes(h.data) && x.argv[0]?.endsWith('node'));
  if (!p) throw new Error(`no corral serve of host ${h.name}`);
  return p.pid;
}

/** Freezes a host's serve process only (SIGSTOP): its fencer, etcd member and QEMUs run on. */
export function freezeServe(h: HostT): number {
  const pid = servePid(h);
  process.kill(pid, 'SIGSTOP');
  frozen.add(pid);
  return pid;
}

export function thawServe(pid: number): void {
  frozen.delete(pid);
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // gone
  }
}
const frozen = new Set<number>();

/** An etcd client with a host's certificate, from the root namespace (over the bridge). */
export function etcdOf(h: HostT, via: HostT[]): Etcd3 {
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

/**
 * Until every etcd member answers a linearizable read on its own: a member restarted in the last
 * round may still be catching up, and cutting another host off then leaves no quorum (correctly,
 * nothing fails over without one) instead of the single failure a round is about.
 */
export async function membersHealthy(): Promise<void> {
  await waitFor(
    'every etcd member healthy',
    async () => {
      const answers = await Promise.all(
        HOSTS.map(async (h) => {
          const c = etcdOf(h, [h]);
          try {
            const ask = c.get('/corral/cluster-id').string();
            return await Promise.race([ask.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
          } catch {
            return false;
          } finally {
            c.close();
          }
        }),
      );
      return answers.every(Boolean);
    },
    120_000,
    1000,
  );
}

export async function whereRunning(from: HostT, not: string, guest: string): Promise<string> {
  return waitFor(
    `${guest} running on a host other than ${not}`,
    async () => {
      const vm = (await list(from).catch(() => [])).find((v) => v.name === guest);
      const host = (vm as (VmInfo & { host?: { name: string } }) | undefined)?.host?.name;
      return vm?.state === 'running' && host && host !== not ? host : null;
    },
    DEADLINE_MS,
    500,
  );
}

export const byName = (n: string) => HOSTS.find((h) => h.name === n)!;

/** Bridge, namespaces, three serves with the shared pool, one cluster of three reporting hosts. */
export async function formCluster(): Promise<void> {
  ip('link', 'add', BRIDGE, 'type', 'bridge');
  ip('addr', 'add', `10.79.${NET}.254/24`, 'dev', BRIDGE);
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
  fs.copyFileSync(FIXTURE.kernel, path.join(SHARED, 'vmlinuz'));
  fs.copyFileSync(FIXTURE.initrd, path.join(SHARED, 'initrd'));
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
}

/** The last `n` lines of a file, or a note that it is missing. */
function tail(file: string, n: number): string {
  if (!fs.existsSync(file)) return `(no ${path.basename(file)})`;
  return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
}

/**
 * Kills everything and removes the namespaces, the bridge and every dir. With `failed`, each
 * host's serve, fencer and etcd logs stay in LOGS and their tails are printed: the first thing
 * to read when a round went wrong.
 */
export function teardown(failed = false): void {
  for (const pid of frozen) thawServe(pid);
  for (const h of HOSTS) killHost(h);
  for (const h of HOSTS) {
    const fencerLog = path.join(h.data, 'ha', 'fencer.log');
    if (fs.existsSync(fencerLog)) fs.copyFileSync(fencerLog, path.join(LOGS, `${h.name}.fencer.log`));
    const etcdLog = path.join(h.data, 'cluster', 'etcd.log');
    if (fs.existsSync(etcdLog)) fs.copyFileSync(etcdLog, path.join(LOGS, `${h.name}.etcd.log`));
    const fenced = fs.existsSync(fencerLog)
      ? tail(fencerLog, 1000)
          .split('\n')
          .filter((l) => l.includes('FENCED'))
      : [];
    if (fenced.length) console.log(`host ${h.name}'s fencer:\n${fenced.join('\n')}`);
  }
  if (failed) {
    for (const h of HOSTS)
      for (const [what, n] of [
        ['serve', 60],
        ['fencer', 20],
      ] as const)
        console.log(`---- host ${h.name}: ${what} log (tail)\n${tail(path.join(LOGS, `${h.name}.${what}.log`), n)}`);
    console.log(`the hosts' logs are kept in ${LOGS}`);
  }
  for (const h of HOSTS) {
    tryIp('netns', 'del', h.ns);
    tryIp('link', 'del', h.veth);
  }
  tryIp('link', 'del', BRIDGE);
  for (const h of HOSTS) fs.rmSync(h.data, { recursive: true, force: true });
  fs.rmSync(SHARED, { recursive: true, force: true });
  if (!failed) fs.rmSync(LOGS, { recursive: true, force: true });
}

/** Makes an HA guest of the tiny guest on the shared pool on host `on` and starts it. */
export async function haGuest(on: HostT, name: string, disk?: string): Promise<string> {
  const sh = (f: string) => path.join(fs.realpathSync(SHARED), f);
  const extra = disk ? ['--disk-image', sh(disk), '--disk-format', 'raw'] : [];
  await ok(on, [
    'vm',
    'create',
    name,
    '--kernel',
    sh('vmlinuz'),
    '--initrd',
    sh('initrd'),
    '--memory',
    '128M',
    '--host',
    on.name,
    ...extra,
  ]);
  await ok(on, ['vm', 'set', name, '--ha', 'on']);
  await ok(on, ['vm', 'start', name]);
  return (await list(on)).find((v) => v.name === name)!.id;
}
