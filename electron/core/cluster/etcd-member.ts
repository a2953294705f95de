// The local etcd member: Debian's /usr/bin/etcd as a child the host supervises. Client and peer
// traffic are TLS with certificates from the cluster CA, and both sides must show one
// (--client-cert-auth, --peer-client-cert-auth). A death is an event and a restart with backoff;
// the data dir survives, so a restarted member rejoins with what it had.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { CertPaths } from './ca.js';
import { etcdEnv, etcdTuningArgs } from './etcd-tuning.js';

export interface EtcdMemberOptions {
  /** The member's name: the host id. */
  name: string;
  dataDir: string;
  address: string;
  clientPort: number;
  peerPort: number;
  certs: CertPaths;
  /** name=peerURL,… of every member, this one included; only read when the data dir is new. */
  initialCluster: string;
  initialState: 'new' | 'existing';
  binary?: string;
  log?: (line: string) => void;
}

const BACKOFF_MS = [500, 1000, 2000, 5000, 10_000];
/** A run this long resets the backoff. */
const STABLE_MS = 30_000;

export const clientUrl = (address: string, port: number) => `https://${address.includes(':') ? `[${address}]` : address}:${port}`;

export class EtcdMember extends EventEmitter<{ exited: [code: number | null, signal: string | null]; started: [pid: number] }> {
  private child: ChildProcess | null = null;
  private stopped = false;
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;
  /** The last lines etcd wrote, for a clear error when it will not start. */
  tail: string[] = [];

  constructor(private readonly o: EtcdMemberOptions) {
    super();
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  args(): string[] {
    const { o } = this;
    const c = o.certs;
    const client = clientUrl(o.address, o.clientPort);
    const peer = clientUrl(o.address, o.peerPort);
    // prettier-ignore
    return [
      '--name', o.name, '--data-dir', o.dataDir,
      '--listen-client-urls', `${client},${clientUrl('127.0.0.1', o.clientPort)}`, '--advertise-client-urls', client,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', o.initialCluster, '--initial-cluster-state', o.initialState,
      '--cert-file', c.cert, '--key-file', c.key, '--trusted-ca-file', c.ca, '--client-cert-auth',
      '--peer-cert-file', c.cert, '--peer-key-file', c.key, '--peer-trusted-ca-file', c.ca, '--peer-client-cert-auth',
      '--logger', 'zap', '--log-outputs', 'stderr',
      ...etcdTuningArgs(),
    ];
  }

  start(): void {
    if (this.stopped || this.child) return;
    fs.mkdirSync(path.dirname(this.o.dataDir), { recursive: true, mode: 0o700 });
    const started = Date.now();
    const child = spawn(this.o.binary ?? '/usr/bin/etcd', this.args(), { stdio: ['ignore', 'ignore', 'pipe'], env: etcdEnv(process.env) });
    this.child = child;
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.tail.push(...d.split('\n').filter(Boolean));
      if (this.tail.length > 40) this.tail.splice(0, this.tail.length - 40);
    });
    child.once('spawn', () => this.emit('started', child.pid!));
    child.once('error', (err) => this.o.log?.(`etcd: ${err.message}`));
    child.once('exit', (code, signal) => {
      this.child = null;
      this.emit('exited', code, signal);
      if (this.stopped) return;
      if (Date.now() - started > STABLE_MS) this.failures = 0;
      const delay = BACKOFF_MS[Math.min(this.failures++, BACKOFF_MS.length - 1)]!;
      const last = this.tail.at(-1) ?? '';
      this.o.log?.(`etcd member exited (${signal ?? `code ${code}`}); restarting in ${delay} ms${last ? `: ${last.slice(0, 300)}` : ''}`);
      this.timer = setTimeout(() => this.start(), delay);
    });
  }

  /** Stops the member (SIGTERM, then SIGKILL after 10 s) and keeps it stopped. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const child = this.child;
    if (!child) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  }
}
