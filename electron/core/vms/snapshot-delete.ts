// Deleting one snapshot: its tag removed from every image that holds it (a snapshot-delete job
// on a running QEMU, qemu-img on a stopped VM), its TPM copy and its record. Its children move
// up to its parent and stay revertable. The caller holds the VM's lock.
import type { SnapshotInfo } from '../api/contract.js';
import { diskNode, FW_VARS_NODE } from '../qemu/ids.js';
import { imgSnapshot } from '../qemu/img-snapshots.js';
import type { VmRecord } from '../store/vm-repo.js';
import type { RunningVm } from './registry.js';
import { dropTpmCopy, holding, places } from './snapshot-files.js';
import { JobWatch, runJob } from './snapshot-jobs.js';
import { busy, failure, liveRun, type Progress, type SnapshotOps } from './snapshot-ops.js';
import { isLiveState } from './snapshot-tree.js';

export async function removeSnapshot(o: SnapshotOps, cur: VmRecord, snap: SnapshotInfo): Promise<void> {
  const { ctx } = o;
  const p = places(ctx.vmDir(cur.id));
  const run = liveRun(ctx, cur);
  const progress = o.progress(cur.id, 'delete', snap.name);
  try {
    if (run) await deleteLive(o, run, cur, snap, progress);
    else {
      if (isLiveState(cur.state)) throw busy(cur);
      const files = [...cur.config.disks.map((d) => d.path), ...(cur.config.firmware !== 'bios' ? [p.vars] : [])];
      const tagged = await holding(files, snap.id, ctx.env);
      progress.fn('deleting (qemu-img)', 0, 1);
      for (const f of tagged) await imgSnapshot('delete', f, snap.id, ctx.env);
    }
  } catch (err) {
    const msg = (err as Error).message;
    progress.end(msg);
    ctx.journal.error(cur, `Deleting snapshot "${snap.name}" failed: ${msg}`);
    throw failure(err, `could not delete snapshot "${snap.name}" of "${cur.name}"`);
  }
  dropTpmCopy(p, snap.id);
  o.repo.remove(snap);
  ctx.journal.note(cur, `Snapshot "${snap.name}" deleted`);
  progress.end(null);
  o.changed(cur.id);
}

/** The nodes of the running QEMU that hold the tag (as QEMU itself sees them), in one job. */
async function deleteLive(o: SnapshotOps, run: RunningVm, cur: VmRecord, snap: SnapshotInfo, progress: Progress): Promise<void> {
  const config = cur.applied ?? cur.config;
  const tags = await run.machine.qmp.snapshotTags();
  const all = [...config.disks.map((_d, i) => diskNode(i)), ...(config.firmware !== 'bios' ? [FW_VARS_NODE] : [])];
  const devices = all.filter((n) => tags.get(n)?.includes(snap.id));
  if (!devices.length) return;
  const watch = new JobWatch(run);
  try {
    await runJob(run, watch, 'delete', { tag: snap.id, devices }, o.ctx.clock, progress.fn, 'deleting');
  } finally {
    watch.end();
  }
}
