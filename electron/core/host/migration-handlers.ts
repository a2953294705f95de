// Live migration, wired for one host: the source side (vm.migrate, vm.migrateCancel) and the
// target side (migration.*), with the CA both sides' QEMU TLS credentials come from.
import path from 'node:path';
import type { Handlers } from '../api/dispatcher.js';
import type { MigrationProgress } from '../api/contract.js';
import { caIn } from '../qemu/tls-creds.js';
import type { Vms } from '../vms/index.js';
import { IncomingMigrations } from '../vms/migration/incoming.js';
import { OutgoingMigrations } from '../vms/migration/outgoing.js';
import type { PeerConnector } from '../vms/migration/peer.js';
import { connectWsPeer } from './ws-peer.js';

type MigrationMethods =
  'vm.migrate' | 'vm.migrateCancel' | 'migration.prepareIncoming' | 'migration.finishIncoming' | 'migration.abortIncoming';

export interface Migration {
  handlers: Pick<Handlers, MigrationMethods>;
  onProgress(fn: (p: MigrationProgress) => void): void;
  /** At host start: arrivals a previous host left are removed. */
  dropLeftovers(): Promise<void>;
}

/**
 * `caDir` holds ca-cert.pem and ca-key.pem: the CA both hosts' QEMU certificates come from
 * (for now the admin puts it there on each host; the cluster will hand over its own).
 */
export function migrationFor(vms: Vms, dataDir: string, connect: PeerConnector = connectWsPeer): Migration {
  const ca = () => caIn(path.join(dataDir, 'migration-ca'));
  const incoming = new IncomingMigrations({
    ctx: vms.ctx,
    supervisor: vms.supervisor,
    service: vms.service,
    committedBytes: () => vms.lifecycle.committedBytes(),
    ca,
  });
  const outgoing = new OutgoingMigrations({ ctx: vms.ctx, service: vms.service, connect, ca });
  return {
    handlers: {
      'vm.migrate': (a) => outgoing.migrate(a),
      'vm.migrateCancel': async (a) => {
        await outgoing.cancel(a.vm);
        return { ok: true as const };
      },
      'migration.prepareIncoming': (a) => incoming.prepare(a),
      'migration.finishIncoming': (a) => incoming.finish(a),
      'migration.abortIncoming': (a) => incoming.abort(a.vm),
    },
    onProgress: (fn) => outgoing.on('progress', fn),
    dropLeftovers: () => incoming.dropLeftovers(),
  };
}
