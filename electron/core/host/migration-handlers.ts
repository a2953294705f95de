// Live migration, wired for one host: the source side (vm.migrate, vm.migrateCancel) and the
// target side (migration.*). Between hosts of a cluster the target is named, reached over the
// cluster's mutual-TLS peer API and QEMU's TLS uses each host's certificate from the cluster
// CA; between two standalone hosts it is a URL with an admin token, and the data dir's
// `migration-ca/` (the same CA on both) signs QEMU's certificates.
import os from 'node:os';
import path from 'node:path';
import type { Handlers } from '../api/dispatcher.js';
import { CorralError } from '../api/dispatcher.js';
import { isTargetUrl, type MigrationProgress } from '../api/contract.js';
import { caIn, type HostCreds } from '../qemu/tls-creds.js';
import type { StatsRepo } from '../store/stats-repo.js';
import type { Vms } from '../vms/index.js';
import { IncomingMigrations } from '../vms/migration/incoming.js';
import { OutgoingMigrations } from '../vms/migration/outgoing.js';
import type { PeerClient, PeerConnector } from '../vms/migration/peer.js';
import { connectWsPeer } from './ws-peer.js';
import { moveTargets, type TargetHost } from './move-targets.js';

type MigrationMethods =
  | 'vm.migrate'
  | 'vm.migrateCancel'
  | 'vm.moveTargets'
  | 'migration.checkIncoming'
  | 'migration.prepareIncoming'
  | 'migration.finishIncoming'
  | 'migration.abortIncoming'
  | 'migration.touchIncoming';

export interface Migration {
  handlers: Pick<Handlers, MigrationMethods>;
  onProgress(fn: (p: MigrationProgress) => void): void;
  /** At host start: arrivals a previous host left are removed. */
  dropLeftovers(): Promise<void>;
}

/** What the cluster lends a migration while this host is in one. */
export interface ClusterRoutes {
  /** A peer for the cluster host named `host`; throws naming the hosts there are when none is. */
  peerFor(host: string): PeerClient;
  /** This host's certificate from the cluster CA: QEMU's credentials on both sides. */
  creds: HostCreds;
  /** Every host of the cluster, this one included, as "Move to…" judges them. */
  hosts(): TargetHost[];
}

export function migrationFor(
  vms: Vms,
  dataDir: string,
  stats: StatsRepo,
  cluster: () => ClusterRoutes | null = () => null,
  wsConnect: (url: string, token: string) => Promise<PeerClient> = connectWsPeer,
): Migration {
  const creds = () => cluster()?.creds ?? caIn(path.join(dataDir, 'migration-ca'));
  const connect: PeerConnector = async (to, token) => {
    if (isTargetUrl(to)) return await wsConnect(to, token ?? '');
    const c = cluster();
    if (!c)
      throw new CorralError('invalid-argument', `invalid argument "to": this host is in no cluster: name the target by its URL`, 'to', {
        reason: 'names no host of a cluster',
      });
    return c.peerFor(to);
  };
  // a VM's journal and statistics move with it (see vms/migration/history.ts)
  const history = { events: vms.events, stats };
  const here = () =>
    cluster()
      ?.hosts()
      .find((h) => h.self)?.name ?? os.hostname();
  const incoming = new IncomingMigrations({
    ctx: vms.ctx,
    supervisor: vms.supervisor,
    service: vms.service,
    committedBytes: () => vms.lifecycle.committedBytes(),
    creds,
    history,
  });
  const outgoing = new OutgoingMigrations({ ctx: vms.ctx, service: vms.service, connect, creds, history, here });
  return {
    handlers: {
      'vm.migrate': (a) => outgoing.migrate(a),
      'vm.migrateCancel': async (a) => {
        await outgoing.cancel(a.vm);
        return { ok: true as const };
      },
      'vm.moveTargets': async (a) => {
        const c = cluster();
        if (!c) throw new CorralError('conflict', 'this host is not in a cluster: a VM moves between hosts of a cluster');
        return await moveTargets(vms.service.get(a.vm), c.hosts());
      },
      'migration.checkIncoming': async (a) => incoming.check(a),
      'migration.prepareIncoming': (a) => incoming.prepare(a),
      'migration.finishIncoming': (a) => incoming.finish(a),
      'migration.abortIncoming': (a) => incoming.abort(a.vm),
      'migration.touchIncoming': async (a) => incoming.touch(a.vm),
    },
    onProgress: (fn) => outgoing.on('progress', fn),
    dropLeftovers: () => incoming.dropLeftovers(),
  };
}
