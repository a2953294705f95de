// What the snapshot modules share: the VM layer's context, the snapshot store, the service's
// events (progress of one operation, a changed tree), and the checks every operation makes.
import type { SnapshotProgress } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import type { SnapshotRepo } from '../store/snapshot-repo.js';
import type { VmRecord } from '../store/vm-repo.js';
import type { VmContext } from './context.js';
import type { RunningVm } from './registry.js';
import type { OnProgress } from './snapshot-jobs.js';

export interface Progress {
  fn: OnProgress;
  end(error: string | null): void;
}

export interface SnapshotOps {
  ctx: VmContext;
  repo: SnapshotRepo;
  /** Sends one operation's progress as the service's events. */
  progress(vmId: string, op: SnapshotProgress['op'], snapshot: string): Progress;
  /** The tree of a VM changed. */
  changed(vmId: string): void;
}

/** A progress reporter that sends each distinct step once, then its end. */
export function reporter(emit: (p: SnapshotProgress) => void, vmId: string, op: SnapshotProgress['op'], snapshot: string): Progress {
  const send = (phase: string, current: number, total: number, done: boolean, error: string | null) =>
    emit({ vmId, op, snapshot, phase, current, total, done, error });
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

/** The VM's QEMU when it runs or is paused (what a live snapshot needs). */
export function liveRun(ctx: VmContext, cur: VmRecord): RunningVm | null {
  const run = ctx.registry.get(cur.id);
  return run && (cur.state === 'running' || cur.state === 'paused') ? run : null;
}

export function busy(cur: VmRecord): CorralError {
  return new CorralError('conflict', `"${cur.name}" is ${cur.state}: try again once it is running or stopped`);
}

/** A CorralError as it is; anything else as a failure of the operation, with QEMU's or qemu-img's words. */
export function failure(err: unknown, what: string): CorralError {
  if (err instanceof CorralError) return err;
  return new CorralError('failed', `${what}: ${(err as Error).message}`);
}
