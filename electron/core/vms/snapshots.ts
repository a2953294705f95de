// Snapshots of a VM: take (live with RAM, disks only, or offline), revert, delete, list, and
// the lookup clones and exports use. Internal qcow2 snapshots whose tag is the snapshot's id,
// in every disk and in the UEFI variables file; the TPM state copied beside them. Operations
// on one VM are serialized with its lifecycle (the VM's lock).
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type { SnapshotInfo, SnapshotProgress, SnapshotSchedule, SnapshotTree, VmConfig, VmInfo } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { agentCommand } from '../qemu/guest-agent.js';
import { diskNode, FW_VARS_NODE } from '../qemu/ids.js';
import { imgSnapshot } from '../qemu/img-snapshots.js';
import type { SnapshotRepo } from '../store/snapshot-repo.js';
import type { VmRecord } from '../store/vm-repo.js';
import { recordOf, type VmContext } from './context.js';
import type { Lifecycle } from './lifecycle.js';
import type { RunningVm } from './registry.js';
import {
  checkSnapshotable,
  createOffline,
  dropTpmCopy,
  hasTpmState,
  hasVars,
  holding,
  imageFiles,
  nodes,
  places,
  restoreTpm,
  saveTpm,
  type VmPlaces,
} from './snapshot-files.js';
import { PauseWatch, runJob, type OnProgress } from './snapshot-jobs.js';
import { describeKind, findSnapshot, isLiveState, restoredChanges, restoredConfig, sameBootHardware, treeOrder } from './snapshot-tree.js';

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

const AGENT_TIMEOUT_MS = 5000;

export class Snapshots extends EventEmitter<SnapshotEvents> {
  constructor(
    private readonly ctx: VmContext,
    private readonly d: SnapshotDeps,
  ) {
    super();
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
      const run = this.liveRun(cur);
      const config = run ? (cur.applied ?? cur.config) : cur.config;
      checkSnapshotable(cur.name, config);
      if (o.memory && !run && !o.scheduled && isLiveState(cur.state)) throw this.busy(cur);
      let id: string;
      do id = `s${randomBytes(6).toString('hex')}`;
      while (this.d.repo.list(cur.id).some((s) => s.id === id));
      const p = places(ctx.vmDir(cur.id));
      const withVars = hasVars(config, p);
      const withTpm = hasTpmState(config, p);
      const progress = this.reporter(cur.id, 'create', o.name);
      try {
        const how = run
          ? await this.takeLive(run, config, id, p, { withVars, withTpm, memory: o.memory }, progress)
          : await this.takeOffline(cur, config, id, p, { withVars, withTpm }, progress);
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
        if (err instanceof CorralError) throw err;
        throw new CorralError('failed', `could not snapshot "${cur.name}": ${msg}`);
      }
    });
  }

  private async takeLive(
    run: RunningVm,
    config: VmConfig,
    id: string,
    p: VmPlaces,
    what: { withVars: boolean; withTpm: boolean; memory: boolean },
    progress: Progress,
  ): Promise<Pick<SnapshotInfo, 'hasRam' | 'kind' | 'consistency' | 'pauseMs'>> {
    const devices = nodes(config, what.withVars);
    const qmp = run.machine.qmp;
    const watch = new PauseWatch(run);
    // swtpm writes its state while the guest uses the TPM: copy it with the vCPUs stopped
    const holdGuest = what.withTpm && this.ctx.vms.get(run.vmId)?.state === 'running';
    try {
      if (holdGuest) await qmp.stop();
      if (what.withTpm) saveTpm(p, id);
      if (what.memory) {
        await runJob(run, 'save', { tag: id, vmstate: diskNode(0), devices }, this.ctx.clock, progress.fn, 'saving RAM and disks');
        if (holdGuest) await qmp.cont();
        return { hasRam: true, kind: 'live', consistency: 'full', pauseMs: watch.pauseMs };
      }
      // QEMU 7.2's snapshot-save always writes RAM: disks alone are one transaction of internal snapshots
      progress.fn('freezing file systems', 0, 1);
      const frozen = await agentCommand(this.d.agentSocket(run.vmId), 'guest-fsfreeze-freeze', AGENT_TIMEOUT_MS).then(
        () => true,
        () => false,
      );
      try {
        progress.fn('snapshotting disks', 0, 1);
        await qmp.internalSnapshots(devices, id);
      } finally {
        if (frozen) await agentCommand(this.d.agentSocket(run.vmId), 'guest-fsfreeze-thaw', AGENT_TIMEOUT_MS).catch(() => undefined);
      }
      if (holdGuest) await qmp.cont();
      return { hasRam: false, kind: 'disk', consistency: frozen ? 'frozen' : 'crash', pauseMs: watch.pauseMs };
    } catch (err) {
      if (holdGuest && watch.stopped) await qmp.cont().catch(() => undefined);
      throw err;
    } finally {
      watch.end();
    }
  }

  private async takeOffline(
    cur: VmRecord,
    config: VmConfig,
    id: string,
    p: VmPlaces,
    what: { withVars: boolean; withTpm: boolean },
    progress: Progress,
  ): Promise<Pick<SnapshotInfo, 'hasRam' | 'kind' | 'consistency' | 'pauseMs'>> {
    if (isLiveState(cur.state)) throw this.busy(cur);
    progress.fn('snapshotting disks (qemu-img)', 0, 1);
    if (what.withTpm) saveTpm(p, id);
    await createOffline(imageFiles(config, p, what.withVars), id, this.ctx.env);
    return { hasRam: false, kind: 'offline', consistency: 'offline', pauseMs: null };
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
      const run = this.liveRun(cur);
      if (!run) {
        if (isLiveState(cur.state)) throw this.busy(cur);
        await this.revertOffline(cur, snap);
        return null;
      }
      if (snap.hasRam && sameBootHardware(cur.applied ?? cur.config, snap.config)) {
        await this.loadLive(cur, run, snap);
        return null;
      }
      return snap;
    });
    if (!plan) return { vm: ctx.describe(recordOf(ctx, rec.id)), restarted: false };
    // disks alone, or RAM for other hardware: a new QEMU
    ctx.journal.note(recordOf(ctx, rec.id), `Reverting to "${plan.name}" needs a restart: stopping the guest`);
    await this.d.lifecycle.kill(rec.id);
    await ctx.locks.run(rec.id, () => this.revertOffline(recordOf(ctx, rec.id), plan));
    await this.d.lifecycle.start(rec.id, `Starting after the revert to "${plan.name}"`);
    if (plan.hasRam) {
      await ctx.locks.run(rec.id, async () => {
        const cur = recordOf(ctx, rec.id);
        const run = this.liveRun(cur);
        if (run) await this.loadLive(cur, run, plan);
      });
    }
    return { vm: ctx.describe(recordOf(ctx, rec.id)), restarted: true };
  }

  private async loadLive(cur: VmRecord, run: RunningVm, snap: SnapshotInfo): Promise<void> {
    const { ctx } = this;
    const p = places(ctx.vmDir(cur.id));
    const config = cur.applied ?? cur.config;
    await this.checkTagged(cur, config, snap, p);
    const progress = this.reporter(cur.id, 'revert', snap.name);
    const watch = new PauseWatch(run);
    try {
      // the TPM's state travels in the RAM state (QEMU's tpm-emulator): swtpm gets it back from QEMU
      await runJob(
        run,
        'load',
        { tag: snap.id, vmstate: diskNode(0), devices: nodes(config, snap.withVars) },
        ctx.clock,
        progress.fn,
        'loading RAM and disks',
      );
      this.afterRevert(cur, snap, `Reverted to snapshot "${snap.name}" (guest resumed where it was, paused ${watch.pauseMs ?? 0} ms)`);
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

  private async revertOffline(cur: VmRecord, snap: SnapshotInfo): Promise<void> {
    const { ctx } = this;
    const p = places(ctx.vmDir(cur.id));
    const target = restoredConfig(cur.config, snap.config);
    const progress = this.reporter(cur.id, 'revert', snap.name);
    progress.fn('reverting disks (qemu-img)', 0, 1);
    try {
      await this.checkTagged(cur, cur.config, snap, { ...p, vars: '' });
      for (const d of cur.config.disks) await imgSnapshot('apply', d.path, snap.id, ctx.env);
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
      if (err instanceof CorralError) throw err;
      throw new CorralError('failed', `could not revert "${cur.name}" to "${snap.name}": ${msg}`);
    }
    const changes = restoredChanges(cur.config, snap.config);
    if (changes.length) ctx.vms.updateConfig(cur.id, cur.name, target, ctx.clock.now());
    const ram = snap.hasRam && !this.liveRun(cur) ? '; its RAM state applies to a running VM: the guest boots at its next start' : '';
    this.afterRevert(
      cur,
      snap,
      `Reverted to snapshot "${snap.name}" (disks${snap.withVars ? ', UEFI variables' : ''}${snap.withTpm ? ', TPM' : ''}${changes.length ? `; settings restored: ${changes.join(', ')}` : ''}${ram})`,
    );
    progress.end(null);
  }

  private afterRevert(cur: VmRecord, snap: SnapshotInfo, message: string): void {
    this.d.repo.setCurrent(cur.id, snap.id);
    this.ctx.journal.note(recordOf(this.ctx, cur.id), message);
    this.ctx.journal.changed(cur.id);
    this.emit('changed', cur.id);
  }

  /** Every disk must hold the tag: a disk added after the snapshot has no state to go back to. */
  private async checkTagged(cur: VmRecord, config: VmConfig, snap: SnapshotInfo, p: VmPlaces): Promise<void> {
    const disks = config.disks.map((d) => d.path);
    const have = new Set(await holding(disks, snap.id, this.ctx.env));
    const missing = disks.findIndex((d) => !have.has(d));
    if (missing >= 0) {
      const reason = `disk ${missing} (${disks[missing]}) does not hold snapshot "${snap.name}" (added or replaced after it was taken)`;
      throw new CorralError('conflict', `cannot revert "${cur.name}": ${reason}`, `disks.${missing}`, { reason });
    }
    if (p.vars && snap.withVars && !(await holding([p.vars], snap.id, this.ctx.env)).length)
      throw new CorralError('conflict', `cannot revert "${cur.name}" live: its UEFI variables no longer hold snapshot "${snap.name}"`);
  }

  /** Deletes one snapshot; its children move up to its parent and stay revertable. */
  delete(ref: string, snapRef: string): Promise<void> {
    const { ctx } = this;
    const rec = recordOf(ctx, ref);
    return ctx.locks.run(rec.id, async () => {
      const cur = recordOf(ctx, rec.id);
      const snap = this.find(cur, snapRef);
      await this.remove(cur, snap);
    });
  }

  /** Deletes a snapshot under the VM's lock (retention calls it with the lock held). */
  private async remove(cur: VmRecord, snap: SnapshotInfo): Promise<void> {
    const { ctx } = this;
    const p = places(ctx.vmDir(cur.id));
    const run = this.liveRun(cur);
    const config = run ? (cur.applied ?? cur.config) : cur.config;
    const files = [...cur.config.disks.map((d) => d.path), ...(config.firmware !== 'bios' ? [p.vars] : [])];
    const tagged = await holding(files, snap.id, ctx.env);
    const progress = this.reporter(cur.id, 'delete', snap.name);
    try {
      if (run) {
        const byFile = new Map(config.disks.map((d, i) => [d.path, diskNode(i)] as const).concat([[p.vars, FW_VARS_NODE]]));
        const devices = tagged.map((f) => byFile.get(f)!).filter(Boolean);
        if (devices.length) {
          const watch = new PauseWatch(run);
          try {
            await runJob(run, 'delete', { tag: snap.id, devices }, ctx.clock, progress.fn, 'deleting');
          } finally {
            watch.end();
          }
        }
      } else {
        if (isLiveState(cur.state)) throw this.busy(cur);
        progress.fn('deleting (qemu-img)', 0, 1);
        for (const f of tagged) await imgSnapshot('delete', f, snap.id, ctx.env);
      }
    } catch (err) {
      const msg = (err as Error).message;
      progress.end(msg);
      ctx.journal.error(cur, `Deleting snapshot "${snap.name}" failed: ${msg}`);
      if (err instanceof CorralError) throw err;
      throw new CorralError('failed', `could not delete snapshot "${snap.name}" of "${cur.name}": ${msg}`);
    }
    dropTpmCopy(p, snap.id);
    this.d.repo.remove(snap);
    ctx.journal.note(cur, `Snapshot "${snap.name}" deleted`);
    progress.end(null);
    this.emit('changed', cur.id);
  }

  /** Retention: deletes the given snapshots of a VM, oldest first, under its lock. */
  prune(vmId: string, ids: string[]): Promise<void> {
    return this.ctx.locks.run(vmId, async () => {
      const cur = recordOf(this.ctx, vmId);
      for (const id of ids) {
        const snap = this.d.repo.list(vmId).find((s) => s.id === id);
        if (snap) await this.remove(cur, snap);
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

  private find(rec: VmRecord, ref: string): SnapshotInfo {
    const snap = findSnapshot(this.d.repo.list(rec.id), ref);
    if (!snap) throw new CorralError('not-found', `"${rec.name}" has no snapshot named "${ref}"`, 'snapshot');
    return snap;
  }

  /** The VM's QEMU when it runs or is paused (what a live snapshot needs). */
  private liveRun(cur: VmRecord): RunningVm | null {
    const run = this.ctx.registry.get(cur.id);
    return run && (cur.state === 'running' || cur.state === 'paused') ? run : null;
  }

  private busy(cur: VmRecord): CorralError {
    return new CorralError('conflict', `"${cur.name}" is ${cur.state}: try again once it is running or stopped`);
  }

  private reporter(vmId: string, op: SnapshotProgress['op'], snapshot: string): Progress {
    const send = (phase: string, current: number, total: number, done: boolean, error: string | null) =>
      this.emit('progress', { vmId, op, snapshot, phase, current, total, done, error });
    let last = '';
    return {
      fn: (phase, current, total) => {
        const key = `${phase}:${current}/${total}`;
        if (key !== last) send(phase, current, total, false, null);
        last = key;
      },
      end: (error) => send(error ? 'failed' : 'done', 1, 1, true, error),
    };
  }
}

interface Progress {
  fn: OnProgress;
  end(error: string | null): void;
}
