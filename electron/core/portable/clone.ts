// Clones: a stopped VM copied under a new id and name, with its own MAC, a copy of its UEFI
// variables and a new TPM identity (unless asked to keep it). Full clones flatten every disk
// into a standalone qcow2; linked clones get an overlay on a managed base (vms/bases.ts).
//
// A running or paused VM is refused: its disks change under the copy and its RAM is not on
// them, so no consistent point exists without a snapshot. With snapshots, `fromSnapshot` (the
// internal snapshot's tag) gives that point: the copies then read the snapshot, not the disks.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Args, VmConfig, VmInfo } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { isLive } from '../api/rules.js';
import { EFI_VARS_FILE, TPM_STATE_DIR } from '../paths.js';
import { ensurePrivateDir } from '../private-files.js';
import { convertToQcow2, createOverlay } from '../qemu/img-copy.js';
import { baseFor, releaseBases } from '../vms/bases.js';
import { recordOf, type VmContext } from '../vms/context.js';
import { withNewMacs } from '../vms/mac.js';
import { places } from '../vms/snapshot-files.js';
import { restoredConfig } from '../vms/snapshot-tree.js';
import type { VmRecord } from '../store/vm-repo.js';
import type { Job } from './jobs.js';

export type CloneArgs = Omit<Args<'vm.clone'>, 'job' | 'fromSnapshot'> & {
  /** A snapshot to clone instead of the current disks: its qcow2 tag and the config it was taken with. */
  from?: { tag: string; config: VmConfig };
};

/** A VM that runs (or is about to) cannot be copied at a consistent point. */
export function refuseRunning(ctx: VmContext, rec: VmRecord, what: string): void {
  if (ctx.registry.has(rec.id) || isLive(rec.state))
    throw new CorralError(
      'conflict',
      `"${rec.name}" is ${rec.state}: stop it to ${what} (a running guest's disks are not at a consistent point)`,
      'vm',
      {
        reason: `is ${rec.state}`,
      },
    );
}

export function newVmId(ctx: VmContext): string {
  let id: string;
  do id = randomBytes(6).toString('hex');
  while (ctx.vms.get(id));
  return id;
}

export async function cloneVm(ctx: VmContext, a: CloneArgs, job: Job): Promise<VmInfo> {
  const src = recordOf(ctx, a.vm);
  if (ctx.vms.nameTaken(a.name)) throw new CorralError('conflict', `a VM named "${a.name}" already exists`, 'name');
  return ctx.locks.run(src.id, async () => {
    let cur = recordOf(ctx, src.id);
    refuseRunning(ctx, cur, 'clone it');
    if (a.linked && a.from)
      throw new CorralError('invalid-argument', 'a linked clone starts from the current state; clone a snapshot in full', 'linked');
    const id = newVmId(ctx);
    const dir = ctx.vmDir(id);
    ensurePrivateDir(dir);
    const made: string[] = [];
    const disks: VmConfig['disks'] = [];
    const touched: string[] = [];
    try {
      const sizes = cur.config.disks.map((d) => fs.statSync(d.path).size);
      job.begin(a.linked ? 'making overlays' : 'copying disks', sizes.reduce((x, y) => x + y, 0) || 1);
      let before = 0;
      for (const [i, d] of cur.config.disks.entries()) {
        job.check();
        const dst = ctx.pools.newDiskPath(id, i);
        const opts = { signal: job.signal, onProgress: (f: number) => job.set(before + f * sizes[i]!) };
        if (a.linked) {
          const { base, shared } = await baseFor(ctx, cur, i, opts);
          touched.push(base);
          cur = recordOf(ctx, cur.id);
          made.push(dst);
          // a source already on the base hands over only what it changed
          if (shared) await convertToQcow2(d, dst, { ...opts, onto: base }, ctx.env);
          else await createOverlay(base, dst, ctx.env);
          disks.push({ path: dst, format: 'qcow2', owned: true, base });
        } else {
          made.push(dst);
          await convertToQcow2(d, dst, { ...opts, snapshot: a.from?.tag }, ctx.env);
          disks.push({ path: dst, format: 'qcow2', owned: true });
        }
        before += sizes[i]!;
      }
      job.check();
      copyVmState(ctx, cur.id, id, a.keepTpm, a.from?.tag);
      const vars = path.join(ctx.vmDir(cur.id), EFI_VARS_FILE);
      // through qemu-img, not a file copy: the clone's variables carry no snapshots of the source
      if (fs.existsSync(vars))
        await convertToQcow2(
          { path: vars, format: 'qcow2' },
          path.join(dir, EFI_VARS_FILE),
          { snapshot: a.from?.tag, signal: job.signal },
          ctx.env,
        );
      // from a snapshot: the settings it was taken with (as a revert restores them), on the new disks
      const settings = a.from ? restoredConfig(cur.config, a.from.config) : cur.config;
      const config: VmConfig = { ...settings, disks, nics: withNewMacs(settings.nics, ctx.vms) };
      const rec = ctx.vms.insert(id, a.name, config, ctx.clock.now());
      job.finish();
      const kind = a.linked ? 'linked clone' : 'full clone';
      ctx.journal.created(
        rec,
        `Created "${a.name}", a ${kind} of "${cur.name}"${a.keepTpm && cur.config.tpm ? ' (same TPM identity)' : ''}`,
      );
      ctx.journal.changed(rec.id);
      return ctx.describe(rec);
    } catch (err) {
      for (const f of made) fs.rmSync(f, { force: true });
      fs.rmSync(dir, { recursive: true, force: true });
      // a base copied for this clone alone goes again; one the source now stands on stays
      releaseBases(
        ctx,
        touched.map((base) => ({ base })),
      );
      throw err;
    }
  });
}

/** The TPM state, when kept: the clone then has the same TPM identity (a move, not a copy, in spirit). */
function copyVmState(ctx: VmContext, fromId: string, toId: string, keepTpm: boolean, snapshotTag?: string): void {
  // a snapshot keeps its own copy of the TPM state beside it (snapshot-files.ts)
  const tpm = snapshotTag ? places(ctx.vmDir(fromId)).tpmCopy(snapshotTag) : path.join(ctx.vmDir(fromId), TPM_STATE_DIR);
  // without it the clone's first start runs swtpm_setup: a new endorsement key, a new identity
  if (keepTpm && fs.existsSync(tpm)) fs.cpSync(tpm, path.join(ctx.vmDir(toId), TPM_STATE_DIR), { recursive: true, verbatimSymlinks: true });
}
