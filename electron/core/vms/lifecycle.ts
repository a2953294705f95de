// The lifecycle verbs: start (admission, launch held at -S, settings QEMU's argv lacks, cont),
// stop (ACPI, forced after a timeout), kill, reset, pause, resume, and stopping every guest.
import fs from 'node:fs';
import type { VmInfo, VmState } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { bootMemoryMiB, can, isLive, whyNot, type VmAction } from '../api/rules.js';
import { MiB } from '../api/units.js';
import { checkImage } from '../qemu/img.js';
import { admit } from '../resources/host-capacity.js';
import type { RuntimePatch, VmRecord } from '../store/vm-repo.js';
import * as policy from '../supervisor/restart-policy.js';
import { checkBootFiles } from './config-checks.js';
import { recheckShares } from './share-checks.js';
import { stopInOrder } from './boot-order.js';
import { recordOf, type VmContext } from './context.js';
import { applyAtBoot } from './live-apply.js';
import type { RunningVm } from './registry.js';
import type { Supervisor } from './supervisor.js';

export class Lifecycle {
  constructor(
    private readonly ctx: VmContext,
    private readonly supervisor: Supervisor,
  ) {
    supervisor.setRelaunch((rec, patch) => this.launch(rec, true, patch));
  }

  /** A start by the user: clears a crash-loop and the restart counters, wins over a pending restart. */
  start(ref: string, message = 'Starting'): Promise<VmInfo> {
    const { ctx } = this;
    const rec = recordOf(ctx, ref);
    return ctx.locks.run(rec.id, async () => {
      const cur = this.allowed(recordOf(ctx, rec.id), 'start');
      this.supervisor.clearRestartTimer(cur.id);
      return this.launch(cur, false, { policyState: policy.onUserStart(), restartAt: null }, message);
    });
  }

  /**
   * Launches QEMU held at -S, applies what its argv lacks, then lets the guest run. `patch` (what
   * the caller decided, e.g. the restart policy's step) is written with "starting", or alone if
   * the start is refused before that.
   *
   * Three commits: "starting" before the spawn (a host that dies after it finds the QEMU by its
   * pidfile, never starts a second one); the pid while QEMU sets itself up (off the critical
   * path: QEMU takes tens of ms more before it answers); "running" after cont.
   */
  async launch(cur: VmRecord, automatic: boolean, patch: RuntimePatch = {}, startMessage = 'Starting'): Promise<VmInfo> {
    const { ctx } = this;
    try {
      // A QEMU for this VM must never run twice, whatever the database says.
      const stray = ctx.driver.findRunning(cur.id, null, null);
      if (stray) throw new CorralError('conflict', `a QEMU (pid ${stray}) is still running for "${cur.name}"`);
      // again at each start: a file checked when saved may have been swapped since (or saved before pools)
      const owner = (real: string) => ctx.vms.list().find((o) => o.config.disks.some((d) => d.path === real))?.name ?? null;
      checkBootFiles(cur.config, ctx.pools, owner);
      recheckShares(ctx, cur.id, cur.config.shares);
      await this.checkDisks(cur);
      this.admit(cur);
      this.checkHa(cur);
    } catch (err) {
      if (Object.keys(patch).length) ctx.vms.setRuntime(cur.id, patch, ctx.clock.now());
      throw err;
    }
    const message = automatic ? `Restarting automatically (restart ${cur.restarts + 1})` : startMessage;
    ctx.journal.transition(cur, 'starting', null, message, { patch });
    // an immediate restart writes "starting" with the end of the last run: both commit first
    await ctx.journal.committed();
    let run: RunningVm | null = null;
    let spawned = false;
    const onSpawn = (pid: number, pidStart: string | null) => {
      const now = ctx.clock.now();
      ctx.vms.setRuntime(cur.id, { pid, pidStart, startedAt: now, ...(automatic ? { restarts: cur.restarts + 1 } : {}) }, now);
      spawned = true;
    };
    try {
      const machine = await ctx.driver.launch({ id: cur.id, name: cur.name, config: cur.config, onSpawn });
      if (!spawned) onSpawn(machine.pid, machine.pidStart);
      run = this.supervisor.adopt(cur.id, machine);
      await applyAtBoot(ctx, run, cur);
      // the host may have been fenced while QEMU set itself up: its guest must not begin here
      const fenced = cur.config.ha.enabled ? (ctx.haStartBlocker?.(cur.id) ?? null) : null;
      if (fenced) throw new CorralError('conflict', fenced, 'ha', { reason: fenced });
      await machine.qmp.cont();
      const after = this.supervisor.reachedRunning(run, `Running (pid ${machine.pid})`, { applied: cur.config });
      return ctx.describe(after);
    } catch (err) {
      const msg = (err as Error).message;
      if (run && ctx.registry.isCurrent(run)) {
        run.requested = 'kill';
        run.machine.signal('SIGKILL');
        await run.ended;
      }
      const now = recordOf(ctx, cur.id);
      ctx.journal.atomically(() => {
        // the run never got going: no pid, and an automatic attempt that failed is not a restart
        if (now.state === 'starting')
          ctx.journal.transition(now, 'stopped', null, `Start failed: ${msg}`, {
            patch: { pid: null, pidStart: null, startedAt: null, restarts: cur.restarts },
          });
        ctx.journal.error(now, `Start failed: ${msg}`);
      });
      if (automatic) ctx.journal.notify(now, 'error', `${now.name} could not be restarted`, msg);
      throw new CorralError('failed', `could not start "${cur.name}": ${msg}`);
    }
  }

  /**
   * The image check of create, again at every start: a disk may have gained a backing file or
   * an external data file since (qemu-img rebase, amend), which would expose a host file.
   */
  private async checkDisks(cur: VmRecord): Promise<void> {
    for (const [i, disk] of cur.config.disks.entries()) {
      if (!fs.existsSync(disk.path)) throw new CorralError('failed', `disk ${disk.path} is missing`, `disks.${i}`);
      this.ctx.pools.resolve(`disks.${i}`, disk.path, { write: true, ownVm: cur.id });
      // a linked clone's base: one of Corral's own, in a pool, itself standalone
      if (disk.base) this.ctx.pools.resolve(`disks.${i}.base`, disk.base, { base: true });
      try {
        if (disk.base) await checkImage(disk.base, 'qcow2', this.ctx.env);
        await checkImage(disk.path, disk.format, this.ctx.env, disk.base);
      } catch (err) {
        const msg = `"${cur.name}" was not started: disk ${i}: ${(err as Error).message}`;
        this.ctx.journal.error(cur, `Not started: disk ${i}: ${(err as Error).message}`);
        throw new CorralError('failed', msg, `disks.${i}`);
      }
    }
  }

  /** A fenced host must not bring back an HA guest the cluster may be running elsewhere. */
  private checkHa(cur: VmRecord): void {
    const why = cur.config.ha.enabled ? (this.ctx.haStartBlocker?.(cur.id) ?? null) : null;
    if (!why) return;
    this.ctx.journal.error(cur, `Not started: ${why}`);
    throw new CorralError('conflict', `"${cur.name}" is highly available and ${why}`, 'ha', { reason: why });
  }

  /** Refuses a start that would commit more memory than the host allows; warns near the limit. */
  private admit(cur: VmRecord): void {
    const { ctx } = this;
    const admission = admit(cur.name, bootMemoryMiB(cur.config) * MiB, this.committedBytes(), ctx.hostMemoryBytes(), ctx.overcommit());
    if (!admission.ok) {
      ctx.journal.error(cur, `Not started: ${admission.message}`);
      throw new CorralError('conflict', admission.message!);
    }
    if (admission.message) {
      ctx.journal.host(cur, `Warning: ${admission.message}`);
      ctx.journal.notify(cur, 'warning', 'Host memory almost fully committed', admission.message);
    }
  }

  /** Memory that running VMs may use: what each QEMU booted with. */
  committedBytes(): number {
    const boot = this.ctx.vms.bootMemoryMiB();
    let sum = 0;
    for (const run of this.ctx.registry.all()) sum += (boot.get(run.vmId) ?? 0) * MiB;
    return sum;
  }

  /** ACPI power button; forced off if the guest has not shut down after timeoutSec. */
  async stop(ref: string, timeoutSec: number): Promise<VmInfo> {
    const { ctx } = this;
    const rec = recordOf(ctx, ref);
    const run = await ctx.locks.run(rec.id, async () => {
      const cur = this.allowed(recordOf(ctx, rec.id), 'stop');
      if (this.stopPending(cur)) return null;
      const run = this.running(cur);
      if (cur.state === 'stopping') return run;
      run.requested = 'stop';
      ctx.journal.transition(
        cur,
        'stopping',
        null,
        timeoutSec > 0 ? `Stopping (ACPI power button, forced off after ${timeoutSec} s)` : 'Stopping (forced)',
      );
      if (timeoutSec > 0) {
        try {
          if (cur.state === 'paused') await run.machine.qmp.cont(); // a paused guest cannot see the button
          await run.machine.qmp.powerdown();
        } catch {
          // QMP gone: the exit handler finishes the job; the force below covers a hung QEMU
        }
      }
      return run;
    });
    if (!run) return ctx.describe(recordOf(ctx, rec.id));
    const cancel = ctx.clock.after(timeoutSec * 1000, () => {
      run.forced = true;
      void this.supervisor.forceOff(run);
    });
    try {
      await run.ended;
    } finally {
      cancel();
    }
    return ctx.describe(recordOf(ctx, rec.id));
  }

  async kill(ref: string): Promise<VmInfo> {
    const { ctx } = this;
    const rec = recordOf(ctx, ref);
    const pending = await ctx.locks.run(rec.id, () => this.stopPending(this.allowed(recordOf(ctx, rec.id), 'kill')));
    if (pending) return ctx.describe(recordOf(ctx, rec.id));
    const run = this.running(recordOf(ctx, rec.id));
    if (run.requested !== 'stop') run.requested = 'kill';
    await this.supervisor.forceOff(run);
    await run.ended;
    return ctx.describe(recordOf(ctx, rec.id));
  }

  /** A user stop or kill of a VM waiting to restart, or stuck in crash-loop: it wins, and it stays stopped. */
  private stopPending(cur: VmRecord): boolean {
    if (cur.state !== 'restarting' && cur.state !== 'crash-loop') return false;
    this.supervisor.cancelRestart(
      cur,
      cur.state === 'restarting' ? 'Pending restart cancelled by the user' : 'Stopped by the user (was in crash-loop)',
    );
    return true;
  }

  reset(ref: string): Promise<VmInfo> {
    return this.qmpVerb(ref, 'reset', null, 'Reset', (r) => r.machine.qmp.reset());
  }

  pause(ref: string): Promise<VmInfo> {
    return this.qmpVerb(ref, 'pause', 'paused', 'Paused', (r) => r.machine.qmp.stop());
  }

  resume(ref: string): Promise<VmInfo> {
    return this.qmpVerb(ref, 'resume', 'running', 'Resumed', (r) => r.machine.qmp.cont());
  }

  private qmpVerb(
    ref: string,
    action: VmAction,
    to: VmState | null,
    message: string,
    send: (run: RunningVm) => Promise<void>,
  ): Promise<VmInfo> {
    const { ctx } = this;
    const rec = recordOf(ctx, ref);
    return ctx.locks.run(rec.id, async () => {
      const cur = this.allowed(recordOf(ctx, rec.id), action);
      const run = this.running(cur);
      run.userTransition = to === 'paused' || to === 'running' ? to : null;
      try {
        await send(run);
      } finally {
        run.userTransition = null;
      }
      if (to) ctx.journal.transition(recordOf(ctx, cur.id), to, null, message);
      else ctx.journal.note(cur, message);
      return ctx.describe(recordOf(ctx, cur.id));
    });
  }

  /**
   * Stops every running guest when the host shuts down: in reverse autostart order, each on the
   * ACPI button, forced off after its stop timeout (or `timeoutSec`); each end is host-shutdown.
   */
  /** Set once stopAll began: autostart starts nothing more. */
  stoppingAll = false;

  async stopAll(timeoutSec?: number): Promise<void> {
    this.stoppingAll = true;
    // nothing restarts while the host goes down
    for (const rec of this.ctx.vms.list()) this.supervisor.clearRestartTimer(rec.id);
    for (const run of this.ctx.registry.all()) run.requested = 'host-shutdown';
    await stopInOrder(
      this.ctx,
      async (run, sec) => {
        try {
          if (this.ctx.vms.get(run.vmId)?.state === 'paused') await run.machine.qmp.cont(); // a paused guest cannot see the button
          await run.machine.qmp.powerdown();
        } catch {
          // forced below
        }
        const cancel = this.ctx.clock.after(sec * 1000, () => {
          run.forced = true;
          void this.supervisor.forceOff(run);
        });
        await run.ended;
        cancel();
      },
      timeoutSec,
    );
  }

  /** The VM's record if the rules allow `action` in its state; a conflict error naming why otherwise. */
  private allowed(cur: VmRecord, action: VmAction): VmRecord {
    if (!can(cur.state, action)) throw new CorralError('conflict', whyNot(cur.name, cur.state, action));
    return cur;
  }

  private running(cur: VmRecord): RunningVm {
    const run = this.ctx.registry.get(cur.id);
    if (!run || !isLive(cur.state)) throw new CorralError('conflict', `"${cur.name}" is not running`);
    return run;
  }
}
