// Going back to a snapshot: in place on a running QEMU (snapshot-load, the guest resumes where
// it was), or offline with qemu-img on a stopped VM (disks, UEFI variables, TPM state, and the
// settings the snapshot was taken with). The caller holds the VM's lock.
import fs from 'node:fs';
import type { SnapshotInfo, VmConfig } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { diskNode, FW_VARS_NODE } from '../qemu/ids.js';
import { imgSnapshot } from '../qemu/img-snapshots.js';
import type { VmRecord } from '../store/vm-repo.js';
import { recordOf } from './context.js';
import type { RunningVm } from './registry.js';
import { holding, nodes, places, restoreTpm } from './snapshot-files.js';
import { JobWatch, runJob } from './snapshot-jobs.js';
import { failure, liveRun, type SnapshotOps } from './snapshot-ops.js';
import { restoredChanges, restoredConfig } from './snapshot-tree.js';
import { metered, VmstateMeter, type VmstateSample } from './vmstate-meter.js';

/** snapshot-load into the running QEMU: disks, UEFI variables and RAM (with the TPM's state in it). */
export async function loadLive(o: SnapshotOps, cur: VmRecord, run: RunningVm, snap: SnapshotInfo): Promise<void> {
  const { ctx } = o;
  const config = cur.applied ?? cur.config;
  // asked of QEMU itself (one QMP round trip): qemu-img beside it would cost a process per image
  const held = await run.machine.qmp.snapshotsHeld();
  const holds = (node: string) => held.get(node)?.find((s) => s.tag === snap.id);
  checkTagged(cur, config, snap, (i) => !!holds(diskNode(i)));
  if (snap.withVars && !holds(FW_VARS_NODE))
    throw new CorralError('conflict', `cannot revert "${cur.name}" live: its UEFI variables no longer hold snapshot "${snap.name}"`);
  const progress = o.progress(cur.id, 'revert', snap.name);
  const watch = new JobWatch(run);
  try {
    // the TPM's state travels in the RAM state (QEMU's tpm-emulator): swtpm gets it back from QEMU
    const args = { tag: snap.id, vmstate: diskNode(0), devices: nodes(config, snap.withVars) };
    const phase = 'loading RAM and disks';
    const meter = VmstateMeter.forLoad(run.machine.pid, holds(diskNode(0))?.vmStateBytes ?? 0);
    const report = (m: VmstateSample) => progress.fn(phase, m.moved, m.total);
    await metered(ctx.clock, meter, report, () => runJob(run, watch, 'load', args, ctx.clock, progress.fn, phase));
    afterRevert(o, cur, snap, `Reverted to snapshot "${snap.name}" (guest resumed where it was, paused ${watch.pauseMs ?? 0} ms)`);
    progress.end(null);
  } catch (err) {
    const msg = (err as Error).message;
    progress.end(msg);
    ctx.journal.error(cur, `Revert to "${snap.name}" failed: ${msg}`);
    // a failed load leaves the vCPUs stopped: the state shows it
    if (watch.stopped && cur.state === 'running')
      ctx.journal.transition(recordOf(ctx, cur.id), 'paused', null, 'Paused: the revert failed');
    throw new CorralError('failed', `could not revert "${cur.name}" to "${snap.name}": ${msg}`);
  } finally {
    watch.end();
  }
}

/** A stopped VM back to a snapshot with qemu-img; the settings it was taken with come back too. */
export async function revertOffline(o: SnapshotOps, cur: VmRecord, snap: SnapshotInfo): Promise<void> {
  const { ctx } = o;
  const p = places(ctx.vmDir(cur.id));
  const target = restoredConfig(cur.config, snap.config);
  const progress = o.progress(cur.id, 'revert', snap.name);
  progress.fn('reverting disks (qemu-img)', 0, 1);
  try {
    const disks = cur.config.disks.map((d) => d.path);
    const have = new Set(await holding(disks, snap.id, ctx.env));
    checkTagged(cur, cur.config, snap, (i) => have.has(disks[i]!));
    for (const d of disks) await imgSnapshot('apply', d, snap.id, ctx.env);
    // the variables of that time, or a fresh copy of the template if it had none (never booted, other firmware)
    if (target.firmware !== 'bios' && fs.existsSync(p.vars)) {
      if (snap.withVars && (await holding([p.vars], snap.id, ctx.env)).length) await imgSnapshot('apply', p.vars, snap.id, ctx.env);
      else fs.rmSync(p.vars, { force: true });
    }
    if (snap.withTpm) restoreTpm(p, snap.id);
  } catch (err) {
    const msg = (err as Error).message;
    progress.end(msg);
    ctx.journal.error(cur, `Revert to "${snap.name}" failed: ${msg}`);
    throw failure(err, `could not revert "${cur.name}" to "${snap.name}"`);
  }
  const changes = restoredChanges(cur.config, snap.config);
  if (changes.length) ctx.vms.updateConfig(cur.id, cur.name, target, ctx.clock.now());
  const ram = snap.hasRam && !liveRun(ctx, cur) ? '; its RAM state applies to a running VM: the guest boots at its next start' : '';
  afterRevert(
    o,
    cur,
    snap,
    `Reverted to snapshot "${snap.name}" (disks${snap.withVars ? ', UEFI variables' : ''}${snap.withTpm ? ', TPM' : ''}${changes.length ? `; settings restored: ${changes.join(', ')}` : ''}${ram})`,
  );
  progress.end(null);
}

function afterRevert(o: SnapshotOps, cur: VmRecord, snap: SnapshotInfo, message: string): void {
  o.repo.setCurrent(cur.id, snap.id);
  o.ctx.journal.note(recordOf(o.ctx, cur.id), message);
  o.ctx.journal.changed(cur.id);
  o.changed(cur.id);
}

/** Every disk must hold the tag: a disk added after the snapshot has no state to go back to. */
function checkTagged(cur: VmRecord, config: VmConfig, snap: SnapshotInfo, holds: (disk: number) => boolean): void {
  const missing = config.disks.findIndex((_d, i) => !holds(i));
  if (missing < 0) return;
  const reason = `disk ${missing} (${config.disks[missing]!.path}) does not hold snapshot "${snap.name}" (added or replaced after it was taken)`;
  throw new CorralError('conflict', `cannot revert "${cur.name}": ${reason}`, `disks.${missing}`, { reason });
}
