// The QMP commands of a live migration, typed: TLS objects, the migration itself, and the
// NBD export + blockdev-mirror that carry local disks. Like commands.ts, the only place that
// spells these commands; the migration modules of the VM layer call these methods.
import type { QmpLink } from './commands.js';

/** The id of the tls-creds-x509 object a migration adds (one per QEMU: server or client). */
export const MIGRATION_TLS = 'mig-tls';
/** The NBD client node on the source that writes to the target's export of disk i. */
export const nbdTargetNode = (i: number) => `mig-nbd${i}`;
/** The mirror job copying disk i. */
export const mirrorJob = (i: number) => `mig-mirror${i}`;
/** The target's NBD export of disk i (and its export name). */
export const diskExport = (i: number) => `mig-disk${i}`;

/** QEMU answers these slowly on a loaded host (object-add loads and checks the certificates). */
const TIMEOUT_MS = 30_000;

export interface MigrationInfo {
  status?: string;
  'total-time'?: number;
  'expected-downtime'?: number;
  downtime?: number;
  'setup-time'?: number;
  ram?: { transferred: number; remaining: number; total: number; mbps: number; 'dirty-sync-count'?: number };
  'socket-address'?: Array<{ type: string; host?: string; port?: string }>;
  'error-desc'?: string;
}

export interface BlockJob {
  device: string;
  type: string;
  len: number;
  offset: number;
  ready: boolean;
  status: string;
}

export class MigrationCommands {
  constructor(private readonly link: QmpLink) {}

  private run<T = void>(command: string, args?: Record<string, unknown>, timeoutMs = TIMEOUT_MS): Promise<T> {
    return this.link.execute<T>(command, args, timeoutMs);
  }

  /** Loads TLS credentials from `dir` (QEMU reads the files now, as the user it runs as). */
  addTlsCreds(dir: string, endpoint: 'server' | 'client'): Promise<void> {
    return this.run('object-add', { 'qom-type': 'tls-creds-x509', id: MIGRATION_TLS, dir, endpoint, 'verify-peer': true });
  }

  delTlsCreds(): Promise<void> {
    return this.run('object-del', { id: MIGRATION_TLS });
  }

  /** Auto-converge throttles a guest whose memory changes faster than the link carries it. */
  setCapabilities(caps: Record<string, boolean>): Promise<void> {
    return this.run('migrate-set-capabilities', {
      capabilities: Object.entries(caps).map(([capability, state]) => ({ capability, state })),
    });
  }

  setParameters(p: { tlsCreds?: string; downtimeLimitMs?: number; tlsHostname?: string }): Promise<void> {
    const args: Record<string, unknown> = {};
    if (p.tlsCreds !== undefined) args['tls-creds'] = p.tlsCreds;
    if (p.tlsHostname !== undefined) args['tls-hostname'] = p.tlsHostname;
    if (p.downtimeLimitMs !== undefined) args['downtime-limit'] = p.downtimeLimitMs;
    return this.run('migrate-set-parameters', args);
  }

  queryParameters(): Promise<Record<string, unknown>> {
    return this.run<Record<string, unknown>>('query-migrate-parameters');
  }

  /** The target starts listening (it was launched with -incoming defer). */
  incoming(uri: string): Promise<void> {
    return this.run('migrate-incoming', { uri });
  }

  migrate(uri: string): Promise<void> {
    return this.run('migrate', { uri });
  }

  query(timeoutMs?: number): Promise<MigrationInfo> {
    return this.run<MigrationInfo>('query-migrate', undefined, timeoutMs);
  }

  cancel(): Promise<void> {
    return this.run('migrate_cancel');
  }

  // ---- local disks: NBD on the target, mirror on the source --------------------------------

  nbdServerStart(host: string, port: number): Promise<void> {
    return this.run('nbd-server-start', {
      addr: { type: 'inet', data: { host, port: String(port) } },
      'tls-creds': MIGRATION_TLS,
    });
  }

  nbdServerStop(): Promise<void> {
    return this.run('nbd-server-stop');
  }

  /** Exposes a format node, writable, under its export name. */
  exportDisk(i: number, node: string): Promise<void> {
    return this.run('block-export-add', {
      type: 'nbd',
      id: diskExport(i),
      'node-name': node,
      name: diskExport(i),
      writable: true,
    });
  }

  unexportDisk(i: number): Promise<void> {
    return this.run('block-export-del', { id: diskExport(i) });
  }

  /** An NBD client node writing to the target's export of disk i, over TLS. */
  addNbdTarget(i: number, host: string, port: number): Promise<void> {
    return this.run('blockdev-add', {
      driver: 'nbd',
      'node-name': nbdTargetNode(i),
      server: { type: 'inet', host, port: String(port) },
      export: diskExport(i),
      'tls-creds': MIGRATION_TLS,
    });
  }

  delNode(node: string): Promise<void> {
    return this.run('blockdev-del', { 'node-name': node });
  }

  /** Copies disk i (its format node) to the target, then keeps mirroring its writes. */
  mirror(i: number, node: string): Promise<void> {
    return this.run('blockdev-mirror', { 'job-id': mirrorJob(i), device: node, target: nbdTargetNode(i), sync: 'full' });
  }

  queryJobs(): Promise<BlockJob[]> {
    return this.run<BlockJob[]>('query-block-jobs');
  }

  /** Ends a job; a ready mirror ends with the target a consistent copy of the source. */
  cancelJob(id: string, force = false): Promise<void> {
    return this.run('block-job-cancel', { device: id, force });
  }
}
