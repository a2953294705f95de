// The order of a machine's boot and shutdown, as Proxmox and Incus have it: autostart VMs start
// in groups of ascending autostartOrder, each group once the one before runs (and answers its
// liveness probe, if it has one) plus its delay; at host shutdown the running guests stop in
// the reverse order, each on the ACPI button, forced off after its own stop timeout.
import type { VmRecord } from '../store/vm-repo.js';
import { isLive } from '../api/rules.js';
import type { VmContext } from './context.js';
import type { RunningVm } from './registry.js';

/** Groups by key, lowest key first. */
function groups<T>(items: T[], key: (t: T) => number): T[][] {
  const by = new Map<number, T[]>();
  for (const it of items) by.set(key(it), [...(by.get(key(it)) ?? []), it]);
  return [...by.keys()].sort((a, b) => a - b).map((k) => by.get(k)!);
}

export interface AutostartResult {
  started: string[];
  failed: string[];
  /** Already running (reattached) or waiting on their restart policy: left alone. */
  skipped: string[];
}

/**
 * Starts the autostart VMs in order. `start` is the lifecycle's start; a VM that fails is
 * recorded and notified, and the rest go on. A VM that already has a guest (or a pending
 * restart) is not started again.
 */
export async function autostartAll(
  ctx: VmContext,
  start: (rec: VmRecord) => Promise<unknown>,
  cancelled: () => boolean,
): Promise<AutostartResult> {
  const result: AutostartResult = { started: [], failed: [], skipped: [] };
  const wanted = ctx.vms.list().filter((r) => r.config.autostart);
  for (const group of groups(wanted, (r) => r.config.autostartOrder)) {
    if (cancelled()) break; // the host is closing
    await Promise.all(
      group.map(async (rec) => {
        const cur = ctx.vms.get(rec.id);
        if (!cur || isLive(cur.state) || cur.state === 'restarting') {
          result.skipped.push(rec.name);
          return;
        }
        try {
          await start(cur);
        } catch (err) {
          result.failed.push(rec.name);
          const now = ctx.vms.get(rec.id);
          const msg = (err as Error).message;
          if (now) {
            // some refusals (a missing boot file, no memory) come before the launch logs anything
            ctx.journal.error(now, `Autostart failed: ${msg}`);
            ctx.journal.notify(now, 'error', `${now.name} did not start at boot`, msg);
          }
          return; // nothing to wait for: the next group goes on
        }
        result.started.push(rec.name);
        const run = ctx.registry.get(rec.id);
        if (run) await ready(ctx, run, cur);
        // clock.after does not hold the process open if the host goes away meanwhile
        const delayMs = cur.config.autostartDelaySec * 1000;
        if (delayMs > 0) await new Promise<void>((resolve) => ctx.clock.after(delayMs, resolve));
      }),
    );
  }
  return result;
}

/** Running, and answering its liveness probe if it has one (at most its start-up window; an end counts as done). */
async function ready(ctx: VmContext, run: RunningVm, rec: VmRecord): Promise<void> {
  if (!rec.config.liveness) return;
  let cancel = () => {};
  const windowOver = new Promise<void>((resolve) => (cancel = ctx.clock.after(rec.config.livenessStartupSec * 1000, resolve)));
  await Promise.race([run.answered, run.ended, windowOver]);
  cancel();
}

/**
 * Stops every running guest: VMs without autostart first, then the autostart groups from the
 * highest order down; a group waits for the one before to end. `timeoutSec` overrides each VM's
 * own stop timeout.
 */
export async function stopInOrder(
  ctx: VmContext,
  stopOne: (run: RunningVm, timeoutSec: number) => Promise<void>,
  timeoutSec?: number,
): Promise<void> {
  const runs = ctx.registry.all().map((run) => ({ run, rec: ctx.vms.get(run.vmId) }));
  // no autostart: nothing depends on them, so they go first
  const order = (r: VmRecord | undefined) => (r?.config.autostart ? r.config.autostartOrder : Number.MAX_SAFE_INTEGER);
  for (const group of groups(runs, (x) => -order(x.rec))) {
    await Promise.all(group.map(({ run, rec }) => stopOne(run, timeoutSec ?? rec?.config.stopTimeoutSec ?? 60)));
  }
}
