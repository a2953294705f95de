// Watches each running QEMU and decides what follows its end: QMP events and hang detection
// during the run; at the end, classification → restart policy → backoff timer → relaunch.
import { allForwards } from '../api/nics.js';
import type { CrashReport, ExitInfo, ExitReason, VmConfig, VmState } from '../api/contract.js';
import type { ExitFacts, Machine } from '../qemu/driver.js';
import type { QmpEvent } from '../qemu/qmp.js';
import type { RuntimePatch, VmRecord } from '../store/vm-repo.js';
import { crashReport } from '../supervisor/crash-report.js';
import { HealthWatch, type HangKind } from '../supervisor/health.js';
import * as policy from '../supervisor/restart-policy.js';
import { classifyEnd, describeEnd, isCleanEnd } from '../supervisor/state.js';
import { formatDelay, recordOf, type VmContext } from './context.js';
import { RunningVm } from './registry.js';

/** Starts a VM again after a crash or an end the policy restarts (lifecycle's launch); `patch` goes with its "starting". */
export type Relaunch = (rec: VmRecord, patch: RuntimePatch) => Promise<unknown>;

const RECENT_EVENTS = 20;
/** A forced stop: SIGTERM lets QEMU flush and exit, SIGKILL follows if it does not. */
const TERM_GRACE_MS = 3000;

export class Supervisor {
  private readonly restartTimers = new Map<string, () => void>();
  private relaunch: Relaunch = () => Promise.reject(new Error('no launcher'));
  /** The host is going away: ends it did not ask for are not its business any more. */
  closing = false;

  constructor(private readonly ctx: VmContext) {}

  setRelaunch(fn: Relaunch): void {
    this.relaunch = fn;
  }

  // ---- a run ------------------------------------------------------------------------------

  /** Starts watching a QEMU: its events, its end. */
  adopt(vmId: string, machine: Machine): RunningVm {
    const run = new RunningVm(vmId, machine);
    this.ctx.registry.add(run);
    machine.onEvent((ev) => this.onQmpEvent(run, ev));
    machine.onTpmFailed((why) => this.onTpmFailed(run, why));
    machine.onShareFailed((why) => this.onShareFailed(run, why));
    machine.onNetworkNote?.((message, recovered) => {
      if (!this.ctx.registry.isCurrent(run)) return;
      if (recovered) this.ctx.journal.host(recordOf(this.ctx, vmId), message);
      else this.ctx.journal.error(recordOf(this.ctx, vmId), message);
    });
    run.ended = machine.exited.then((facts) => this.onExit(run, facts));
    return run;
  }

  /**
   * The guest runs: the policy learns it, hang detection begins. `patch` is written with the
   * new state, in the same commit.
   */
  /** probeFrom: when the liveness start-up window opens (default: when its QEMU started). */
  reachedRunning(run: RunningVm, message: string, patch: RuntimePatch = {}, probeFrom?: number): VmRecord {
    const rec = recordOf(this.ctx, run.vmId);
    const now = this.ctx.clock.now();
    const after = this.ctx.journal.transition(rec, 'running', null, message, {
      patch: { ...patch, policyState: policy.onRunning(policyState(rec), now), restartAt: null },
    });
    this.watchHealth(run, after.config, probeFrom ?? after.startedAt ?? now);
    return after;
  }

  /** (Re)starts hang detection with the VM's current liveness settings. */
  watchHealth(run: RunningVm, config: VmConfig, startedAt: number): void {
    const { ctx } = this;
    run.health?.stop();
    let probe = null;
    if (config.liveness) {
      try {
        // the forwards QEMU runs with, never a pending change: the host connects only where the guest is
        const applied = ctx.vms.get(run.vmId)?.applied;
        const booted = applied ? allForwards(applied) : [];
        probe = ctx.probes(config.liveness, booted, run.vmId);
      } catch (err) {
        ctx.journal.error(recordOf(ctx, run.vmId), `Liveness probe off: ${(err as Error).message}`);
      }
    }
    run.health = new HealthWatch({
      qmp: run.machine.qmp,
      probe,
      timing: ctx.health,
      clock: ctx.clock,
      startupEndsAt: startedAt + config.livenessStartupSec * 1000,
      onHung: (kind, why) => this.onHung(run, kind, why),
      onFirstAnswer: () => {
        run.markAnswered();
        const rec = ctx.vms.get(run.vmId);
        if (rec && ctx.registry.isCurrent(run))
          ctx.journal.host(rec, `Liveness probe answered after ${formatDelay(ctx.clock.now() - startedAt)}`);
      },
      paused: () => ctx.vms.get(run.vmId)?.state === 'paused',
      busy: () => run.job !== null,
    });
    run.health.start();
  }

  /** A hung QEMU or guest cannot be asked to stop: it is killed and handled as a crash. */
  private onHung(run: RunningVm, kind: HangKind, why: string): void {
    if (!this.ctx.registry.isCurrent(run) || run.requested) return;
    run.hung = kind;
    run.hungWhy = why;
    run.machine.signal('SIGKILL');
  }

  /** A guest that lost its TPM cannot go on safely: QEMU is ended and the end is a crash. */
  private onTpmFailed(run: RunningVm, why: string): void {
    if (!this.ctx.registry.isCurrent(run) || run.requested || run.tpmFailed) return;
    run.tpmFailed = why;
    run.machine.signal('SIGKILL');
  }

  /** Likewise a guest whose shared folder went away under it (writes in flight are lost). */
  private onShareFailed(run: RunningVm, why: string): void {
    if (!this.ctx.registry.isCurrent(run) || run.requested || run.tpmFailed || run.shareFailed) return;
    run.shareFailed = why;
    run.machine.signal('SIGKILL');
  }

  private onQmpEvent(run: RunningVm, ev: QmpEvent): void {
    run.recentEvents.push(ev);
    if (run.recentEvents.length > RECENT_EVENTS) run.recentEvents.shift();
    run.job?.onEvent(ev);
    const { vms, journal } = this.ctx;
    switch (ev.event) {
      case 'SHUTDOWN':
        run.shutdown = { guest: Boolean(ev.data?.guest), reason: String(ev.data?.reason ?? '') };
        break;
      case 'GUEST_PANICKED':
        run.panicked = true;
        break;
      case 'WATCHDOG': {
        const rec = vms.get(run.vmId);
        if (!rec) break;
        if (rec.config.guestWatchdog === 'restart' && !run.requested) {
          // QEMU paused the guest; ending it now hands the decision to the restart policy
          run.watchdog = true;
          run.machine.signal('SIGKILL');
        } else if (rec.config.guestWatchdog === 'poweroff') {
          run.watchdog = true;
        } else {
          journal.note(
            rec,
            `The guest's watchdog fired (QEMU action: ${String(ev.data?.action ?? rec.config.guestWatchdog)})`,
            'guest-watchdog',
          );
        }
        break;
      }
      case 'STOP':
      case 'RESUME': {
        // keep the state true when QEMU pauses by itself (I/O error, watchdog "pause") or is resumed
        const rec = vms.get(run.vmId);
        const to: VmState = ev.event === 'STOP' ? 'paused' : 'running';
        const ending = run.shutdown || run.watchdog || run.panicked;
        if (run.userTransition === to || run.job) break; // the lifecycle verb or the snapshot job records it
        if (rec && (rec.state === 'running' || rec.state === 'paused') && rec.state !== to && !ending) {
          journal.transition(rec, to, null, ev.event === 'STOP' ? 'Paused by QEMU' : 'Resumed');
        }
        break;
      }
    }
  }

  /** SIGTERM lets QEMU flush and exit; SIGKILL if it does not within a few seconds. */
  async forceOff(run: RunningVm): Promise<void> {
    if (!this.ctx.registry.isCurrent(run)) return;
    run.machine.signal('SIGTERM');
    const cancel = this.ctx.clock.after(TERM_GRACE_MS, () => run.machine.signal('SIGKILL'));
    await run.ended;
    cancel();
  }

  // ---- the end of a run ---------------------------------------------------------------------

  private onExit(run: RunningVm, facts: ExitFacts): void {
    const { ctx } = this;
    if (!ctx.registry.isCurrent(run)) return;
    ctx.registry.remove(run);
    run.health?.stop();
    const rec = ctx.vms.get(run.vmId);
    if (!rec) return;
    if (this.closing && run.requested === null) return;
    const reason = classifyEnd({
      ...facts,
      requested: run.requested,
      shutdown: run.shutdown,
      panicked: run.panicked,
      watchdog: run.watchdog,
      hung: run.hung,
      tpmFailed: run.tpmFailed !== null,
      shareFailed: run.shareFailed !== null,
    });
    let note = '';
    if (reason === 'user-stop' || reason === 'host-shutdown')
      note = run.forced ? ': forced off, the guest ignored the power button' : run.shutdown?.guest ? ': the guest shut down cleanly' : '';
    if (run.hung) note = ` (${run.hungWhy})`;
    else if (run.tpmFailed) note = ` (${run.tpmFailed})`;
    else if (run.shareFailed) note = ` (${run.shareFailed})`;
    const report = isCleanEnd(reason)
      ? null
      : crashReport({
          reason,
          code: facts.code,
          signal: facts.signal,
          events: run.recentEvents,
          logs: ctx.driver.crashLogs(run.vmId, run.machine.logStart),
        });
    this.finish(rec, reason, facts.code, facts.signal, note, report);
  }

  /**
   * Records the end of a run, then lets the restart policy decide what comes next: the end,
   * the decision and a scheduled restart are one commit.
   */
  finish(
    rec: VmRecord,
    reason: ExitReason,
    code: number | null,
    signalName: string | null,
    note = '',
    report: CrashReport | null = null,
  ): void {
    const { ctx } = this;
    const now = ctx.clock.now();
    const lastExit: ExitInfo = { code, signal: signalName, reason, at: now };
    ctx.cgroups?.remove(rec.id);
    ctx.journal.atomically(() => {
      const ended = ctx.journal.transition(
        rec,
        isCleanEnd(reason) ? 'stopped' : 'crashed',
        reason,
        describeEnd(reason, code, signalName) + note,
        {
          patch: { pid: null, pidStart: null, lastExit, applied: null, startedAt: null },
          report,
        },
      );
      this.applyPolicy(ended, reason);
    });
  }

  private applyPolicy(rec: VmRecord, reason: ExitReason): void {
    const { ctx } = this;
    const c = rec.config;
    const step = policy.onEnd(
      policyState(rec),
      { policy: c.restart, maxCrashes: c.maxCrashes, windowMs: c.crashWindowSec * 1000 },
      reason,
      ctx.clock.now(),
      ctx.random,
    );
    const d = step.decision;
    const crashed = !isCleanEnd(reason);
    if (d.action === 'restart') {
      this.scheduleRestart(
        rec,
        d.at,
        `Restart ${d.delayMs ? `in ${formatDelay(d.delayMs)}` : 'now'} (policy ${c.restart}, attempt ${d.attempt})`,
        { policyState: step.state },
      );
      if (crashed) ctx.journal.notify(rec, 'warning', `${rec.name} crashed and is restarting`, describeEnd(reason, null, null));
    } else if (d.action === 'crash-loop') {
      const msg = `${d.crashes} ${d.crashes === 1 ? 'crash' : 'crashes'} within ${formatDelay(d.windowMs)}: no more automatic restarts until you start it`;
      ctx.journal.transition(rec, 'crash-loop', reason, `Crash loop: ${msg}`, { patch: { policyState: step.state } });
      ctx.journal.notify(rec, 'error', `${rec.name} is crash-looping`, msg);
    } else {
      ctx.vms.setRuntime(rec.id, { policyState: step.state }, ctx.clock.now());
      if (crashed)
        ctx.journal.notify(rec, 'error', `${rec.name} crashed`, `${describeEnd(reason, null, null)} (restart policy: ${c.restart})`);
    }
  }

  // ---- pending restarts -----------------------------------------------------------------------

  /** Restarts the VM at `at` (now: right after the current commit); `patch` is written with it. */
  scheduleRestart(rec: VmRecord, at: number, message: string, patch: RuntimePatch = {}): void {
    const { ctx } = this;
    this.clearRestartTimer(rec.id);
    ctx.journal.atomically(() => {
      if (rec.state === 'restarting') {
        ctx.vms.setRuntime(rec.id, { ...patch, restartAt: at }, ctx.clock.now());
        ctx.journal.note(rec, message);
      } else ctx.journal.transition(rec, 'restarting', null, message, { patch: { ...patch, restartAt: at } });
    });
    const relaunch = async () => {
      const cur = ctx.vms.get(rec.id);
      if (!cur || cur.state !== 'restarting' || this.closing) return;
      const t = policy.onTimer(policyState(cur), ctx.clock.now());
      if (!t.start) {
        ctx.vms.setRuntime(cur.id, { policyState: t.state }, ctx.clock.now());
        return;
      }
      try {
        await this.relaunch(cur, { policyState: t.state });
      } catch {
        // logged and notified by the launch; the VM stays stopped
      }
    };
    const fire = () => {
      this.restartTimers.delete(rec.id);
      void ctx.locks.run(rec.id, relaunch);
    };
    const delay = Math.max(0, at - ctx.clock.now());
    // Now: at once if nothing else holds the VM, so its "starting" joins the commit that
    // recorded the end of the run, after the rest of it (the spawn waits for that commit);
    // otherwise in line.
    if (delay === 0) ctx.journal.lastInTransaction(() => void (ctx.locks.runIfIdle(rec.id, relaunch) ?? ctx.locks.run(rec.id, relaunch)));
    else this.restartTimers.set(rec.id, ctx.clock.after(delay, fire));
  }

  /** A user stop (or a policy switched to "never") wins over a pending restart. */
  cancelRestart(rec: VmRecord, message: string): void {
    const { ctx } = this;
    this.clearRestartTimer(rec.id);
    ctx.journal.transition(rec, 'stopped', null, message, { patch: { policyState: policy.onUserStop(policyState(rec)), restartAt: null } });
  }

  clearRestartTimer(id: string): void {
    this.restartTimers.get(id)?.();
    this.restartTimers.delete(id);
  }

  /** The host is leaving: timers stop, guests go on unwatched. */
  detachAll(): void {
    this.closing = true;
    for (const cancel of this.restartTimers.values()) cancel();
    this.restartTimers.clear();
    for (const run of this.ctx.registry.all()) {
      run.health?.stop();
      run.machine.detach();
    }
    this.ctx.registry.clear();
  }
}

/** The restart policy's state as stored (a fresh one when missing or from an older Corral). */
export function policyState(rec: VmRecord): policy.PolicyState {
  const s = rec.policyState as Partial<policy.PolicyState> | null;
  return s && Array.isArray(s.crashTimes) ? { ...policy.INITIAL_STATE, ...s } : { ...policy.INITIAL_STATE };
}
