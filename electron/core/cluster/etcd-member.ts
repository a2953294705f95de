// The local etcd member: Debian's /usr/bin/etcd as a child the host supervises. Client and peer
// traffic are TLS with certificates from the cluster CA, and both sides must show one
// (--client-cert-auth, --peer-client-cert-auth). A death is an event and a restart with backoff;
// the data dir survives, so a restarted member rejoins with what it had.
// Its log goes to a file beside its data dir, not to a pipe into the host: a host process that
// stalls (frozen, or its event loop stuck) would stop reading the pipe, and etcd, blocked on
// writing its next line once the pipe is full, would stall with it. As the cluster's raft leader
// it then still sent heartbeats but answered no lease keepalive, and every host lost its lease.
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
/** A log past this size at a (re)start is moved to `etcd.log.1`, replacing the one before. */
const LOG_ROTATE_BYTES = 16 * 1024 * 1024;
/** A run this long resets the backoff. */
const STABLE_MS = 30_000;

export const clientUrl = (address: string, port: number) => `https://${address.includes(':') ? `[${address}]` : address}:${port}`;

export class EtcdMember extends EventEmitter<{ exited: [code: number | null, signal: string | null]; started: [pid: number] }> {
  private child: ChildProcess | null = null;
  private stopped = false;
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Where etcd writes its log. */
  readonly logFile: string;

  constructor(private readonly o: EtcdMemberOptions) {
    super();
    this.logFile = path.join(path.dirname(o.dataDir), 'etcd.log');
  }

  /** The last lines etcd wrote, for a clear error when it will not start. */
  tail(lines: number): string[] {
    return lastLines(this.logFile, lines);
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
    rotate(this.logFile);
    const log = fs.openSync(this.logFile, 'a', 0o600);
    let child: ChildProcess;
    try {
      child = spawn(this.o.binary ?? '/usr/bin/etcd', this.args(), { stdio: ['ignore', 'ignore', log], env: etcdEnv(process.env) });
    } finally {
      fs.closeSync(log); // the child has its own copy
    }
    this.child = child;
    child.once('spawn', () => this.emit('started', child.pid!));
    child.once('error', (err) => this.o.log?.(`etcd: ${err.message}`));
    child.once('exit', (code, signal) => {
      this.child = null;
      this.emit('exited', code, signal);
      if (this.stopped) return;
      if (Date.now() - started > STABLE_MS) this.failures = 0;
      const delay = BACKOFF_MS[Math.min(this.failures++, BACKOFF_MS.length - 1)]!;
      const last = this.tail(1)[0] ?? '';
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

function rotate(file: string): void {
  try {
    if (fs.statSync(file).size > LOG_ROTATE_BYTES) fs.renameSync(file, `${file}.1`);
  } catch {
    // no log yet
  }
}

/** The last `n` lines of a file (from its last 64 KiB), none if it is missing. */
export function lastLines(file: string, n: number): string[] {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return [];
  }
  try {
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    return buf.toString('utf8').split('\n').filter(Boolean).slice(-n);
  } finally {
    fs.closeSync(fd);
  }
}
