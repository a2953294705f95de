// Snapshots assembled on top of a host's VM layer: the service and its scheduler, sharing the
// VM layer's clock, locks and journal. A host builds it once after the VM layer.
import type { Db } from '../store/db.js';
import { SnapshotRepo } from '../store/snapshot-repo.js';
import type { Vms } from './index.js';
import { SnapshotScheduler } from './snapshot-schedule.js';
import { Snapshots } from './snapshots.js';

export interface SnapshotLayer {
  snapshots: Snapshots;
  /** The rows themselves, for bundles that carry a tree (portable/). */
  repo: SnapshotRepo;
  scheduler: SnapshotScheduler;
}

export function snapshotLayer(vms: Vms, db: Db, agentSocket: (vmId: string) => string): SnapshotLayer {
  const repo = new SnapshotRepo(db);
  const { ctx } = vms;
  const snapshots = new Snapshots(ctx, { repo, lifecycle: vms.lifecycle, agentSocket });
  const scheduler = new SnapshotScheduler(repo, ctx.clock, {
    vm: (id) => ctx.vms.get(id),
    take: (id, o) => snapshots.create(id, o),
    prune: (id, ids) => snapshots.prune(id, ids),
    setSchedule: (id, schedule, nextAt) => snapshots.setSchedule(id, schedule, nextAt),
    failed: (rec, message) => {
      ctx.journal.error(rec, message);
      ctx.journal.notify(rec, 'error', `${rec.name}: scheduled snapshot failed`, message);
    },
  });
  return { snapshots, scheduler, repo };
}
