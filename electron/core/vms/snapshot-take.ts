// How a snapshot is taken: live with RAM (one snapshot-save job), live disks only (a transaction
// of internal snapshots, file systems frozen when the guest agent answers), or offline with
// qemu-img. Only what needs the guest still happens while it is paused.
import type { SnapshotInfo, VmConfig } from '../api/contract.js';
import { agentCommand } from '../qemu/guest-agent.js';
import { diskNode } from '../qemu/ids.js';
import type { VmContext } from './context.js';
import type { RunningVm } from './registry.js';
import { createOffline, imageFiles, nodes, saveTpm, type VmPlaces } from './snapshot-files.js';
import { JobWatch, runJob } from './snapshot-jobs.js';
import type { Progress } from './snapshot-ops.js';
import { metered, VmstateMeter, type VmstateSample } from './vmstate-meter.js';

const MiB = 1024 * 1024;

export type Taken = Pick<SnapshotInfo, 'hasRam' | 'kind' | 'consistency' | 'pauseMs'>;

export interface What {
  withVars: boolean;
  withTpm: boolean;
  memory: boolean;
}

const AGENT_TIMEOUT_MS = 5000;

export async function takeLive(
  ctx: VmContext,
  agentSocket: string,
  run: RunningVm,
  config: VmConfig,
  id: string,
  p: VmPlaces,
  what: What,
  progress: Progress,
): Promise<Taken> {
  const devices = nodes(config, what.withVars);
  const qmp = run.machine.qmp;
  const watch = new JobWatch(run);
  // swtpm writes its state while the guest uses the TPM: copy it with the vCPUs stopped
  const holdGuest = what.withTpm && ctx.vms.get(run.vmId)?.state === 'running';
  try {
    if (holdGuest) await qmp.stop();
    if (what.withTpm) saveTpm(p, id);
    if (what.memory) {
      // a guest held for the TPM runs again the moment QEMU is done, before the job's result is read
      const resume = holdGuest ? () => qmp.cont() : undefined;
      const args = { tag: id, vmstate: diskNode(0), devices };
      const phase = 'saving RAM and disks';
      const meter = VmstateMeter.forSave(run.machine.pid, (config.maxMemoryMiB ?? config.memoryMiB) * MiB);
      const report = (m: VmstateSample) => progress.fn(phase, m.moved, m.total);
      await metered(ctx.clock, meter, report, () => runJob(run, watch, 'save', args, ctx.clock, progress.fn, phase, resume));
      return { hasRam: true, kind: 'live', consistency: 'full', pauseMs: watch.pauseMs };
    }
    // QEMU 7.2's snapshot-save always writes RAM: disks alone are one transaction of internal snapshots
    progress.fn('freezing file systems', 0, 1);
    const frozen = await agentCommand(agentSocket, 'guest-fsfreeze-freeze', AGENT_TIMEOUT_MS).then(
      () => true,
      () => false,
    );
    try {
      progress.fn('snapshotting disks', 0, 1);
      await qmp.internalSnapshots(devices, id);
    } finally {
      if (frozen) await agentCommand(agentSocket, 'guest-fsfreeze-thaw', AGENT_TIMEOUT_MS).catch(() => undefined);
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

/** A stopped VM: every image tagged with qemu-img (the TPM state copied while swtpm is not running). */
export async function takeOffline(
  ctx: VmContext,
  config: VmConfig,
  id: string,
  p: VmPlaces,
  what: Omit<What, 'memory'>,
  progress: Progress,
): Promise<Taken> {
  progress.fn('snapshotting disks (qemu-img)', 0, 1);
  if (what.withTpm) saveTpm(p, id);
  await createOffline(imageFiles(config, p, what.withVars), id, ctx.env);
  return { hasRam: false, kind: 'offline', consistency: 'offline', pauseMs: null };
}
