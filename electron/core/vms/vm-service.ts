// VM definitions: create, edit, grow a disk, delete. An edit of a running VM applies at once
// what the rules allow (api/rules.ts) and keeps the rest pending until the next boot.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Args, UpdateResult, VmConfig, VmInfo } from '../api/contract.js';
import type { VmRecord } from '../store/vm-repo.js';
import { CorralError } from '../api/dispatcher.js';
import { bootedFrom, bootMemoryMiB, can, isLive, isRunning, liveBlocker, stoppedOnly, type NotLive } from '../api/rules.js';
import { EFI_VARS_FILE } from '../paths.js';
import { ensurePrivateDir } from '../private-files.js';
import { createQcow2, imageVirtualSize, resizeImage } from '../qemu/img.js';
import { checkHaStorage } from './ha-storage.js';
import { checkBootFiles, checkExistingImage, checkNetwork, checkPortsFree, checkResources } from './config-checks.js';
import { defaultNics, resolveNics } from './nic-config.js';
import { nicsLiveBlocker } from '../api/nics.js';
import { recordOf, type VmContext } from './context.js';
import { checkShares } from './share-checks.js';
import { applyLive } from './live-apply.js';
import { releaseBases } from './bases.js';
import type { Supervisor } from './supervisor.js';

type Fields = Omit<Args<'vm.update'>, 'vm' | 'live'>;

function omitCreateOnly(a: Args<'vm.create'>): Omit<Args<'vm.create'>, 'name' | 'disk'> {
  const { name: _n, disk: _d, ...settings } = a;
  return settings;
}

export class VmService {
  constructor(
    private readonly ctx: VmContext,
    private readonly supervisor: Supervisor,
  ) {}

  list(): VmInfo[] {
    return this.ctx.vms.list().map((r) => this.ctx.describe(r));
  }

  get(ref: string): VmInfo {
    return this.ctx.describe(recordOf(this.ctx, ref));
  }

  async create(a: Args<'vm.create'>): Promise<VmInfo> {
    const { ctx } = this;
    if (ctx.vms.nameTaken(a.name)) throw new CorralError('conflict', `a VM named "${a.name}" already exists`, 'name');
    const { name, disk } = a;
    // no NIC list: one NIC of the host's default kind, carrying the top-level forwards
    // (forwards default to []: with a NIC list only non-empty ones mean anything)
    const net = a.nics
      ? resolveNics(a.nics, [], a.forwards.length ? a.forwards : undefined)
      : resolveNics(defaultNics(ctx.driver.defaultNicKind(), a.forwards), []);
    const settings = checkBootFiles({ ...omitCreateOnly(a), ...net }, ctx.pools, this.diskOwner());
    checkNetwork(settings, this.others(null));
    await checkPortsFree(settings, []);
    checkResources(settings);
    this.checkCgroups(settings, ['cpuWeight', 'cpuCapPercent']);
    let id: string;
    do id = randomBytes(6).toString('hex');
    while (ctx.vms.get(id));
    const dir = ctx.vmDir(id);
    ensurePrivateDir(dir);
    let created: string | null = null;
    try {
      const disks: VmConfig['disks'] = [];
      if (disk && 'size' in disk) {
        created = ctx.pools.newDiskPath(id, 0);
        await createQcow2(created, disk.size, ctx.env);
        disks.push({ path: created, format: 'qcow2', owned: true });
      } else if (disk) {
        const img = await checkExistingImage(disk.image, disk.format, ctx.pools, this.diskOwner(), ctx.env);
        disks.push({ ...img, owned: false });
      }
      const config: VmConfig = {
        ...settings,
        disks,
        // installers today expect UEFI; a VM keeps the hardware it was made with
        firmware: settings.firmware ?? (settings.iso ? 'uefi' : 'bios'),
        machineType: settings.machineType ?? ctx.driver.pinnedMachineType(),
        shares: checkShares(ctx, null, settings.shares),
      };
      checkHaStorage(config, ctx.pools, (p) => ctx.pools.isShared(p));
      const rec = ctx.vms.insert(id, name, config, ctx.clock.now());
      ctx.journal.created(rec, `Created "${name}"`);
      ctx.journal.changed(rec.id);
      return ctx.describe(rec);
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      if (created) fs.rmSync(created, { force: true });
      throw err;
    }
  }

  /** Every VM but `id`: their forwards are theirs. */
  private others(id: string | null): Array<{ name: string; config: VmConfig }> {
    return this.ctx.vms
      .list()
      .filter((r) => r.id !== id)
      .map((r) => ({ name: r.name, config: r.config }));
  }

  /** Which VM has a file as a disk (its own included: a disk is never also a boot file). */
  private diskOwner(): (real: string) => string | null {
    return (real) => this.ctx.vms.list().find((o) => o.config.disks.some((d) => d.path === real))?.name ?? null;
  }

  /**
   * Saves new settings. On a running VM, what QEMU or the host can change live is applied at
   * once (balloon, vCPU hotplug, I/O limits, cgroups, supervision); the rest is pending until
   * the next boot, and the answer says which and why. With `live`, anything that cannot be
   * applied now is refused instead.
   */
  update(a: Args<'vm.update'>): Promise<UpdateResult> {
    const { ctx } = this;
    const rec = recordOf(ctx, a.vm);
    return ctx.locks.run(rec.id, async () => {
      const cur = recordOf(ctx, rec.id);
      const { vm: _vm, live: liveOnly, ...fields } = a;
      const changed = (Object.keys(fields) as Array<keyof Fields>).filter((k) => fields[k] !== undefined);
      const name = a.name ?? cur.name;
      if (a.name !== undefined && ctx.vms.nameTaken(a.name, cur.id))
        throw new CorralError('conflict', `a VM named "${a.name}" already exists`, 'name');
      let next: VmConfig = { ...cur.config };
      for (const key of changed) if (key !== 'name') (next as Record<string, unknown>)[key] = fields[key];
      // NICs keep their ids and MACs; forwards alone replace the primary NIC's
      if (fields.nics || fields.forwards)
        Object.assign(next, resolveNics(fields.nics ?? cur.config.nics, cur.config.nics, fields.forwards));
      next = checkBootFiles(next, ctx.pools, this.diskOwner());
      checkNetwork(next, this.others(cur.id));
      await checkPortsFree(next, cur.applied ? [cur.config, cur.applied] : [cur.config]);
      checkHaStorage(next, ctx.pools, (p) => ctx.pools.isShared(p));
      this.checkCgroups(next, changed);
      const run = ctx.registry.get(cur.id);
      const hardware = changed.find((k) => stoppedOnly(k) && fields[k] !== cur.config[k as keyof VmConfig]);
      if (hardware && (run || isLive(cur.state))) {
        const reason = `${hardware} can only change while the VM is stopped`;
        throw new CorralError('conflict', `"${cur.name}" is ${cur.state}: ${reason}; stop it first`, hardware, { reason });
      }
      const running = !!run && isRunning(cur.state);
      if (liveOnly && !running) throw new CorralError('conflict', `"${cur.name}" is not running: --live needs a running VM`);
      const applied = running ? { ...(cur.applied ?? cur.config) } : null;
      // memory above the maximum raises the maximum (at the next boot); lowering it live keeps
      // the memory QEMU booted with as the ceiling for later
      if (
        changed.includes('memoryMiB') &&
        !changed.includes('maxMemoryMiB') &&
        next.maxMemoryMiB !== null &&
        next.memoryMiB > next.maxMemoryMiB
      ) {
        next.maxMemoryMiB = next.memoryMiB;
      }
      if (
        applied &&
        changed.includes('memoryMiB') &&
        next.maxMemoryMiB === null &&
        !changed.includes('maxMemoryMiB') &&
        next.memoryMiB < bootMemoryMiB(applied)
      ) {
        next.maxMemoryMiB = applied.maxMemoryMiB = bootMemoryMiB(applied);
      }
      checkResources(next);
      const host = { cgroups: !!ctx.cgroups?.status.available, cgroupsReason: ctx.cgroups?.status.reason ?? 'no cgroup support' };
      const notLive: NotLive[] = [];
      if (applied) {
        for (const field of changed) {
          const why = field === 'nics' ? nicsLiveBlocker(applied.nics, next.nics) : liveBlocker(field, next, bootedFrom(applied), host);
          if (why) notLive.push({ field, why });
        }
      }
      if (liveOnly && notLive.length) {
        throw new CorralError(
          'conflict',
          `cannot apply ${notLive.map((n) => n.field).join(', ')} live: ${notLive[0]!.why}`,
          notLive[0]!.field,
          {
            reason: notLive[0]!.why,
          },
        );
      }
      const saved = ctx.vms.updateConfig(cur.id, name, next, ctx.clock.now());
      // another firmware build starts from its own template (secure boot keys or none)
      if (next.firmware !== cur.config.firmware) fs.rmSync(path.join(ctx.vmDir(cur.id), EFI_VARS_FILE), { force: true });
      const failed: NotLive[] = [];
      if (run && applied) {
        for (const key of changed) {
          if (key === 'name' || notLive.some((n) => n.field === key)) continue;
          try {
            const now = await applyLive(ctx, run, key, next, applied);
            if (now) Object.assign(applied, now);
            else (applied as Record<string, unknown>)[key] = next[key as keyof VmConfig];
          } catch (err) {
            failed.push({ field: key, why: (err as Error).message });
          }
        }
        ctx.vms.setRuntime(cur.id, { applied }, ctx.clock.now());
      }
      const now = recordOf(ctx, cur.id);
      const pendingNote = now.pending.length ? `; pending until the next boot: ${now.pending.join(', ')}` : '';
      ctx.journal.updated(saved, `Settings changed: ${changed.join(', ') || 'nothing'}${pendingNote}`);
      for (const f of failed) ctx.journal.error(saved, `Could not apply live: ${f.field}: ${f.why}`);
      if (liveOnly && failed.length)
        throw new CorralError('failed', `could not apply live: ${failed.map((f) => `${f.field}: ${f.why}`).join('; ')}`, failed[0]!.field);
      // a policy switched to "never" cancels a pending restart
      if (now.state === 'restarting' && next.restart === 'never')
        this.supervisor.cancelRestart(now, 'Restart cancelled: policy is now "never"');
      if (run && (changed.includes('liveness') || changed.includes('livenessStartupSec')))
        this.supervisor.watchHealth(run, next, now.startedAt ?? ctx.clock.now());
      ctx.journal.changed(saved.id);
      return { ...this.get(saved.id), notLive: [...notLive, ...failed] };
    });
  }

  /** Grows a disk: block_resize while running, qemu-img resize while stopped. */
  resizeDisk(ref: string, index: number, size: number): Promise<VmInfo> {
    const { ctx } = this;
    const rec = recordOf(ctx, ref);
    return ctx.locks.run(rec.id, async () => {
      const cur = recordOf(ctx, rec.id);
      const disk = cur.config.disks[index];
      if (!disk)
        throw new CorralError('invalid-argument', `invalid argument "disk": "${cur.name}" has no disk ${index}`, 'disk', {
          reason: `"${cur.name}" has no disk ${index}`,
        });
      // a disk the user brought is theirs: Corral never changes its size
      if (!disk.owned || !ctx.pools.isCreatedPlace(disk.path, cur.id)) {
        const reason = `disk ${index} (${disk.path}) was not created by Corral, which never resizes a disk it did not create`;
        throw new CorralError('invalid-argument', `invalid argument "disk": ${reason}`, 'disk', { reason });
      }
      const current = await imageVirtualSize(disk.path, disk.format, ctx.env);
      if (size <= current) {
        const reason = `disks only grow; disk ${index} is already ${current} bytes`;
        throw new CorralError('invalid-argument', `invalid argument "size": ${reason}`, 'size', { reason, current });
      }
      const run = ctx.registry.get(cur.id);
      if (run) await run.machine.qmp.resizeDisk(index, size);
      else if (isLive(cur.state)) throw new CorralError('conflict', `"${cur.name}" is ${cur.state}: try again in a moment`);
      else await resizeImage(disk.path, disk.format, size, ctx.env);
      ctx.journal.updated(cur, `Disk ${index} grown to ${size} bytes${run ? ' (live)' : ''}`);
      ctx.journal.changed(cur.id);
      return this.get(cur.id);
    });
  }

  async delete(ref: string, keepDisks: boolean): Promise<void> {
    const { ctx } = this;
    const rec = recordOf(ctx, ref);
    await ctx.locks.run(rec.id, () => {
      const cur = recordOf(ctx, rec.id);
      if (!can(cur.state, 'delete') || ctx.registry.has(cur.id))
        throw new CorralError('conflict', `"${cur.name}" is ${cur.state}: stop it before deleting it`);
      this.remove(cur, keepDisks, `Deleted "${cur.name}"`);
    });
  }

  /** Removes a VM with no QEMU: its record, its files and its owned disks unless kept. The caller holds its lock. */
  remove(cur: VmRecord, keepDisks: boolean, message: string): void {
    const { ctx } = this;
    this.supervisor.clearRestartTimer(cur.id);
    ctx.vms.delete(cur.id);
    ctx.driver.forget(cur.id);
    // a base whose last linked clone this was goes with it
    releaseBases(ctx, keepDisks ? [] : cur.config.disks);
    const dir = ctx.vmDir(cur.id);
    for (const disk of cur.config.disks) {
      if (disk.owned && !keepDisks && ctx.pools.isCreatedPlace(disk.path, cur.id)) fs.rmSync(disk.path, { force: true });
    }
    // logs, rotated logs, known_hosts…: everything Corral keeps for the VM, except disks to keep
    const keep = new Set(cur.config.disks.filter((d) => !d.owned || keepDisks).map((d) => d.path));
    for (const entry of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      const p = path.join(dir, entry);
      if (!keep.has(p)) fs.rmSync(p, { recursive: true, force: true });
    }
    try {
      fs.rmdirSync(dir); // only if empty: kept disks stay where they are
    } catch {
      // kept disks remain
    }
    const kept = keepDisks ? cur.config.disks.filter((d) => d.owned).map((d) => d.path) : [];
    ctx.journal.deleted(cur, `${message}${kept.length ? `; kept ${kept.join(', ')}` : ''}`);
  }

  /** CPU weight and cap need cgroup v2 delegation; refuse them clearly where it is missing. */
  private checkCgroups(c: Pick<VmConfig, 'cpuWeight' | 'cpuCapPercent'>, changed: readonly string[]): void {
    const field = (['cpuWeight', 'cpuCapPercent'] as const).find((f) => changed.includes(f) && c[f] !== null);
    if (!field || this.ctx.cgroups?.status.available) return;
    throw new CorralError(
      'conflict',
      `CPU weight and cap are unavailable on this host: ${this.ctx.cgroups?.status.reason ?? 'no cgroup support'}`,
      field,
    );
  }
}
