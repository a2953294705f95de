// Several `corral serve` hosts on one machine, each in a network namespace of its own (veth
// pairs on a bridge made here, addresses given here), each with its own data dir: what the
// cluster tests and the cluster bench run on. Needs root. stop() undoes everything it made.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { ClusterStatus, VmInfo } from '../../electron/core/api/contract';
import { CLI, endProcessesOf, tempDir, waitFor } from '../helpers';
import { corral } from './serve-process';

export interface NsHost {
  name: string;
  ns: string;
  veth: string;
  address: string;
  data: string;
  serve: ChildProcess | null;
  log: string;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const tryIp = (...args: string[]) => {
  try {
    ip(...args);
  } catch {
    // already gone
  }
};

export class NetnsHosts {
  readonly hosts: NsHost[];
  private readonly bridge: string;

  /** `tag` keeps interface names (at most 15 characters) apart from another run's. */
  constructor(names: string[], tag: string) {
    const net = 20 + (process.pid % 200);
    this.bridge = `${tag}br${net}`;
    this.hosts = names.map((name, i) => ({
      name,
      ns: `${tag}${net}${name}`,
      veth: `${tag}${net}${name}0`,
      address: `10.78.${net}.${i + 1}`,
      data: tempDir(`corral-${tag}-${name}-`),
      serve: null,
      log: '',
    }));
  }

  /** The bridge, one namespace per host, and each host's `corral serve` (extra args: e.g. --etcd). */
  async start(extra: (h: NsHost) => string[] = () => []): Promise<void> {
    const net = this.hosts[0]!.address.split('.')[2];
    ip('link', 'add', this.bridge, 'type', 'bridge');
    ip('addr', 'add', `10.78.${net}.254/24`, 'dev', this.bridge);
    ip('link', 'set', this.bridge, 'up');
    for (const h of this.hosts) {
      ip('netns', 'add', h.ns);
      ip('link', 'add', h.veth, 'type', 'veth', 'peer', 'name', `${h.veth}p`);
      ip('link', 'set', `${h.veth}p`, 'netns', h.ns);
      ip('-n', h.ns, 'link', 'set', `${h.veth}p`, 'name', 'eth0');
      ip('-n', h.ns, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0');
      ip('-n', h.ns, 'link', 'set', 'eth0', 'up');
      ip('-n', h.ns, 'link', 'set', 'lo', 'up');
      ip('link', 'set', h.veth, 'master', this.bridge, 'up');
    }
    await Promise.all(this.hosts.map((h) => this.startServe(h, extra(h))));
  }

  startServe(h: NsHost, extra: string[] = []): Promise<void> {
    const child = spawn(
      'ip',
      ['netns', 'exec', h.ns, process.execPath, CLI, 'serve', '--data', h.data, '--listen', '127.0.0.1:0', ...extra],
      { env: { ...process.env, CORRAL_ACCEL: 'tcg' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    h.serve = child;
    child.stdout!.on('data', (d: Buffer) => (h.log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (h.log += d.toString()));
    return waitFor(
      `corral serve on ${h.name}`,
      () => {
        if (child.exitCode !== null) throw new Error(`serve on ${h.name} exited: ${h.log}`);
        return /\n(No users|Users log in)/.test(h.log);
      },
      120_000,
    ).then(() => undefined);
  }

  /** `cluster init` on the first host, `cluster join` on the others; resolves once all report. */
  async form(): Promise<ClusterStatus> {
    const [first, ...rest] = this.hosts as [NsHost, ...NsHost[]];
    await ok(first.data, ['cluster', 'init', '--name', first.name, '--address', first.address, '--json']);
    for (const h of rest) {
      const t = JSON.parse(await ok(first.data, ['cluster', 'token', '--json'])) as { token: string };
      await ok(h.data, ['cluster', 'join', `https://${first.address}:7422`, '--token', t.token, '--name', h.name, '--address', h.address]);
    }
    return await waitFor(
      `${this.hosts.length} reporting hosts`,
      async () => {
        const st = await status(first);
        return st.hosts.filter((x) => x.reporting).length === this.hosts.length ? st : null;
      },
      120_000,
      300,
    );
  }

  async stop(): Promise<void> {
    for (const h of this.hosts) {
      const child = h.serve;
      if (!child || child.exitCode !== null) continue;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 30_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    for (const h of this.hosts) {
      // QEMUs, and the fencer and etcd member a host leaves running by design when it stops
      if (fs.existsSync(h.data)) endProcessesOf(h.data);
      tryIp('netns', 'del', h.ns);
      tryIp('link', 'del', h.veth);
      fs.rmSync(h.data, { recursive: true, force: true });
    }
    tryIp('link', 'del', this.bridge);
  }
}

export async function ok(dir: string, args: string[]): Promise<string> {
  const r = await corral(dir, args);
  if (r.code !== 0) throw new Error(`corral ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
export const status = async (h: NsHost) => JSON.parse(await ok(h.data, ['cluster', 'status', '--json'])) as ClusterStatus;
export const list = async (h: NsHost) => JSON.parse(await ok(h.data, ['vm', 'list', '--json'])) as VmInfo[];
