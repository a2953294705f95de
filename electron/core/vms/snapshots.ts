// Snapshots of a VM: take (live with RAM, disks only, or offline), revert, delete, list, and
// the lookup clones and exports use. Internal qcow2 snapshots whose tag is the snapshot's id,
// in every disk and in the UEFI variables file; the TPM state copied beside them. Operations
// on one VM are serialized with its lifecycle (the VM's lock).
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { SnapshotInfo, SnapshotProgress, SnapshotSchedule, SnapshotTree, VmConfig, VmInfo } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import type { SnapshotRepo } from '../store/snapshot-repo.js';
import type { VmRecord } from '../store/vm-repo.js';
import { recordOf, type VmContext } from './context.js';
import type { Lifecycle } from './lifecycle.js';
import { removeSnapshot } from './snapshot-delete.js';
import { checkSnapshotable, dropTpmCopy, hasTpmState, hasVars, places } from './snapshot-files.js';
import { busy, failure, liveRun, reporter, type SnapshotOps } from './snapshot-ops.js';
import { loadLive, revertOffline } from './snapshot-revert.js';
import { takeLive, takeOffline } from './snapshot-take.js';
import { describeKind, findSnapshot, isLiveState, sameBootHardware, treeOrder } from './snapshot-tree.js';

export interface SnapshotDeps {
  repo: SnapshotRepo;
  lifecycle: Lifecycle;
  /** qemu-guest-agent's socket for a VM (to freeze file systems before a disk-only snapshot). */
  agentSocket: (vmId: string) => string;
}

export interface CreateOptions {
  name: string;
  description: string;
  /** With RAM (a running VM only). */
  memory: boolean;
  scheduled?: boolean;
}

export interface SnapshotEvents {
  progress: [SnapshotProgress];
  /** The tree of a VM changed (taken, reverted, deleted, schedule set). */
  changed: [string];
}

export class Snapshots extends EventEmitter<SnapshotEvents> {
  /** What the operations' modules share. */
  private readonly ops: SnapshotOps;

  constructor(
    private readonly ctx: VmContext,
    private readonly d: SnapshotDeps,
  ) {
    super();
    this.ops = {
      ctx,
      repo: d.repo,
      progress: (vmId, op, snapshot) => reporter((p) => this.emit('progress', p), vmId, op, snapshot),
      changed: (vmId) => this.emit('changed', vmId),
    };
  }

  list(ref: string): SnapshotTree {
    const rec = recordOf(this.ctx, ref);
    const head = this.d.repo.head(rec.id);
    return { snapshots: treeOrder(this.d.repo.list(rec.id)).map((n) => n.snap), currentId: head.currentId, schedule: head.schedule };
  }

  /** For clones and exports: a VM's snapshot by name, its qcow2 tag and the config it was taken with. */
  resolve(vmRef: string, snapshot: string): { vmId: string; tag: string; config: VmConfig } {
    const rec = recordOf(this.ctx, vmRef);
    const snap = this.find(rec, snapshot);
    return { vmId: rec.id, tag: snap.id, config: snap.config };
  }

  create(ref: string, o: CreateOptions): Promise<SnapshotInfo> {
    const { ctx } = this;
    const rec = recordOf(ctx, ref);
    return ctx.locks.run(rec.id, async () => {
      const cur = recordOf(ctx, rec.id);
      if (this.d.repo.list(cur.id).some((s) => s.name.toLowerCase() === o.name.toLowerCase()))
        throw new CorralError('conflict', `"${cur.name}" already has a snapshot named "${o.name}"`, 'name');
      const run = liveRun(ctx, cur);
      const config = run ? (cur.applied ?? cur.config) : cur.config;
      checkSnapshotable(cur.name, config);
      if (o.memory && !run && !o.scheduled && isLiveState(cur.state)) throw busy(cur);
      let id: string;
      do id = `s${randomBytes(6).toString('hex')}`;
      while (this.d.repo.list(cur.id).some((s) => s.id === id));
      const p = places(ctx.vmDir(cur.id));
      const withVars = hasVars(config, p);
      const withTpm = hasTpmState(config, p);
      const progress = this.ops.progress(cur.id, 'create', o.name);
      try {
        const what = { withVars, withTpm, memory: o.memory };
        const how = run
          ? await takeLive(ctx, this.d.agentSocket(cur.id), run, config, id, p, what, progress)
          : await this.offline(cur, () => takeOffline(ctx, config, id, p, what, progress));
        const snap: SnapshotInfo = {
          id,
          vmId: cur.id,
          parentId: this.d.repo.head(cur.id).currentId,
          name: o.name,
          description: o.description,
          createdAt: ctx.clock.now(),
          scheduled: o.scheduled ?? false,
          withVars,
          withTpm,
          // what the guest runs on (the RAM state needs it), not a change pending until the next boot
          config,
          ...how,
        };
        this.d.repo.add(snap);
        const pause = snap.pauseMs !== null ? `, guest paused ${snap.pauseMs} ms` : '';
        ctx.journal.note(cur, `Snapshot "${o.name}" taken (${describeKind(snap)}${pause})`);
        progress.end(null);
        this.emit('changed', cur.id);
        return snap;
      } catch (err) {
        dropTpmCopy(p, id);
        const msg = (err as Error).message;
        progress.end(msg);
        ctx.journal.error(cur, `Snapshot "${o.name}" failed: ${msg}`);
        throw failure(err, `could not snapshot "${cur.name}"`);
      }
    });
  }

  /**
   * Back to a snapshot. A running VM and a RAM snapshot on the same hardware: snapshot-load, the
   * guest resumes where it was. A running VM otherwise: stopped, reverted offline, started (and
   * for a RAM snapshot, its RAM loaded into the new QEMU). A stopped VM: reverted offline; a RAM
   * state applies only to a running VM, so it boots from the snapshot's disks at its next start.
   */
  async revert(ref: string, snapRef: string): Promise<{ vm: VmInfo; restarted: boolean }> {
    const { ctx } = this;
    const rec = recordOf(ctx, ref);
    const plan = await ctx.locks.run(rec.id, async () => {
      const cur = recordOf(ctx, rec.id);
      const snap = this.find(cur, snapRef);
      const run = liveRun(ctx, cur);
      if (!run) {
        if (isLiveState(cur.state)) throw busy(cur);
        await revertOffline(this.ops, cur, snap);
        return null;
      }
      if (snap.hasRam && sameBootHardware(cur.applied ?? cur.config, snap.config)) {
        await loadLive(this.ops, cur, run, snap);
        return null;
      }
      return snap;
    });
    if (!plan) return { vm: ctx.describe(recordOf(ctx, rec.id)), restarted: false };
    // disks alone, or RAM for other hardware: a new QEMU
    ctx.journal.note(recordOf(ctx, rec.id), `Reverting to "${plan.name}" needs a restart: stopping the guest`);
    await this.d.lifecycle.kill(rec.id);
    await ctx.locks.run(rec.id, () => revertOffline(this.ops, recordOf(ctx, rec.id), plan));
    await this.d.lifecycle.start(rec.id, `Starting after the revert to "${plan.name}"`);
    if (plan.hasRam) {
      await ctx.locks.run(rec.id, async () => {
        const cur = recordOf(ctx, rec.id);
        const run = liveRun(ctx, cur);
        if (run) await loadLive(this.ops, cur, run, plan);
      });
    }
    return { vm: ctx.describe(recordOf(ctx, rec.id)), restarted: true };
  }

  /** Deletes one snapshot; its children move up to its parent and stay revertable. */
  delete(ref: string, snapRef: string): Promise<void> {
    const { ctx } = this;
    const rec = recordOf(ctx, ref);
    return ctx.locks.run(rec.id, async () => {
      const cur = recordOf(ctx, rec.id);
      const snap = this.find(cur, snapRef);
      await removeSnapshot(this.ops, cur, snap);
    });
  }

  /** Retention: deletes the given snapshots of a VM, oldest first, under its lock. */
  prune(vmId: string, ids: string[]): Promise<void> {
    return this.ctx.locks.run(vmId, async () => {
      const cur = recordOf(this.ctx, vmId);
      for (const id of ids) {
        const snap = this.d.repo.list(vmId).find((s) => s.id === id);
        if (snap) await removeSnapshot(this.ops, cur, snap);
      }
    });
  }

  setSchedule(ref: string, schedule: SnapshotSchedule | null, nextAt: number | null): SnapshotTree {
    const rec = recordOf(this.ctx, ref);
    this.d.repo.setSchedule(rec.id, schedule, nextAt);
    this.ctx.journal.updated(
      rec,
      schedule ? `Snapshot schedule: every ${schedule.everySec} s, keep ${schedule.keep}` : 'Snapshot schedule turned off',
    );
    this.emit('changed', rec.id);
    return this.list(rec.id);
  }

  /** Work on a stopped VM only: one that is starting or stopping is busy. */
  private offline<T>(cur: VmRecord, work: () => Promise<T>): Promise<T> {
    if (isLiveState(cur.state)) throw busy(cur);
    return work();
  }

  private find(rec: VmRecord, ref: string): SnapshotInfo {
    const snap = findSnapshot(this.d.repo.list(rec.id), ref);
    if (!snap) throw new CorralError('not-found', `"${rec.name}" has no snapshot named "${ref}"`, 'snapshot');
    return snap;
  }
}
