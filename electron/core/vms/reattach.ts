// When a host starts: every guest a previous host left running is watched again (never
// launched a second time), the ones that died meanwhile are settled, and restarts that were
// pending when it stopped are resumed at their original time.
import { isLive } from '../api/rules.js';
import type { VmRecord } from '../store/vm-repo.js';
import * as policy from '../supervisor/restart-policy.js';
import { crashReport } from '../supervisor/crash-report.js';
import { formatDelay, type VmContext } from './context.js';
import { policyState, type Supervisor } from './supervisor.js';

export async function reattachAll(ctx: VmContext, supervisor: Supervisor): Promise<void> {
  const all = ctx.vms.list();
  await Promise.all(all.filter((r) => isLive(r.state)).map((r) => ctx.locks.run(r.id, () => reattach(ctx, supervisor, r))));
  for (const r of all) {
    if (!isLive(r.state)) ctx.driver.cleanup(r.id); // stale sockets and pidfiles
    if (r.state === 'restarting') {
      const d = policy.onHostStart(policyState(r), ctx.clock.now());
      if (d.action === 'restart') {
        const when = d.at <= ctx.clock.now() ? 'due now' : `in ${formatDelay(d.at - ctx.clock.now())}`;
        supervisor.scheduleRestart(r, d.at, `Resuming the restart that was pending when Corral stopped (${when})`);
      } else ctx.journal.transition(r, 'crashed', null, `Pending restart dropped: ${d.action === 'none' ? d.why : d.action}`);
    }
  }
}

async function reattach(ctx: VmContext, supervisor: Supervisor, rec: VmRecord): Promise<void> {
  const pid = ctx.driver.findRunning(rec.id, rec.pid, rec.pidStart);
  if (pid) {
    let machine;
    try {
      machine = await ctx.driver.attach(rec.id, pid, rec.pidStart, rec.applied ?? rec.config);
    } catch (err) {
      // alive but not answering: it cannot be supervised, so it is ended as hung
      ctx.driver.kill(pid);
      ctx.driver.cleanup(rec.id);
      supervisor.finish(rec, 'qemu-hung', null, 'SIGKILL', ` (did not answer QMP after a host restart: ${(err as Error).message})`);
      return;
    }
    const run = supervisor.adopt(rec.id, machine);
    if (rec.state === 'stopping') run.requested = 'stop';
    const paused = (await machine.qmp.queryStatus().catch(() => null))?.status === 'paused';
    // ended already (its swtpm was gone): the supervisor recorded that end
    if (!ctx.registry.isCurrent(run)) return;
    const note = `Reattached (pid ${pid})`;
    if (paused && rec.state !== 'paused') ctx.journal.transition(rec, 'paused', null, `${note}, paused`);
    else if (paused || rec.state === 'running' || rec.state === 'stopping') ctx.journal.host(rec, note, rec.state);
    else {
      // the last host died mid-start: it ran the guest (driver) but never saw it running
      supervisor.reachedRunning(run, note);
      ctx.journal.changed(rec.id);
      return;
    }
    supervisor.watchHealth(run, rec.config, rec.startedAt ?? ctx.clock.now());
    ctx.journal.changed(rec.id);
    return;
  }
  ctx.driver.cleanup(rec.id);
  if (rec.state === 'stopping') {
    supervisor.finish(rec, 'user-stop', null, null, ' while Corral was not running');
    return;
  }
  const report = crashReport({ reason: 'qemu-exited', code: null, signal: null, events: [], logs: ctx.driver.crashLogs(rec.id, 0) });
  supervisor.finish(rec, 'qemu-exited', null, null, ' while Corral was not running', report);
}
