// Shared folders of a VM: add, remove, list. A share is part of how QEMU starts (a device and,
// for virtiofs, a virtiofsd), so a change to a running VM waits for its next boot and the
// answer says so (notLive), as vm.update does for other boot-time settings.
import type { Args, Result, SharedFolder, UpdateResult, VmConfig } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { isLive, isRunning, LIMITS, mountCommand, type NotLive } from '../api/rules.js';
import { shareMechanism, shareSupport, type ShareSupport } from '../qemu/virtiofsd.js';
import { recordOf, type VmContext } from './context.js';
import { checkShareFolder, defaultTag, otherShares } from './share-checks.js';
import type { VmService } from './vm-service.js';

/** Why a running VM does not take a share change at once. */
export const SHARES_NOT_LIVE =
  'shared folders attach when QEMU starts (9p cannot be hot-added; virtiofs would need shared memory from boot): restart the VM';

export class ShareService {
  constructor(
    private readonly ctx: VmContext,
    private readonly vmService: VmService,
    private readonly support: () => ShareSupport = () => shareSupport(ctx.env),
  ) {}

  list(ref: string): Result<'vm.share.list'> {
    const rec = recordOf(this.ctx, ref);
    const support = this.support();
    const booted = rec.applied?.shares ?? null;
    const same = (a: SharedFolder, b: SharedFolder) => JSON.stringify(a) === JSON.stringify(b);
    const info = (s: SharedFolder, pending: 'add' | 'remove' | null) => {
      const mechanism = shareMechanism(s.via, support);
      return { ...s, mechanism, mount: mountCommand(s.tag, mechanism, s.readOnly), pending };
    };
    return [
      ...rec.config.shares.map((s) => info(s, booted && !booted.some((b) => same(b, s)) ? 'add' : null)),
      // still in the guest until it restarts
      ...(booted ?? []).filter((b) => !rec.config.shares.some((s) => same(b, s))).map((b) => info(b, 'remove')),
    ];
  }

  add(a: Args<'vm.share.add'>): Promise<UpdateResult> {
    return this.change(a.vm, (cur, _name, vmId) => {
      if (cur.shares.length >= LIMITS.shares.max)
        throw new CorralError('invalid-argument', `invalid argument "path": a VM has at most ${LIMITS.shares.max} shared folders`, 'path', {
          reason: `a VM has at most ${LIMITS.shares.max} shared folders`,
          limit: LIMITS.shares.max,
        });
      const taken = cur.shares.map((s) => s.tag);
      const tag = a.tag ?? defaultTag(a.path, taken);
      if (taken.includes(tag)) {
        const reason = `"${tag}" is already the tag of a shared folder of this VM`;
        throw new CorralError('conflict', `invalid argument "tag": ${reason}`, 'tag', { reason });
      }
      const share: SharedFolder = { path: a.path, tag, readOnly: a.readOnly, via: a.via };
      const real = checkShareFolder('path', a.path, this.ctx.pools, otherShares(this.ctx, vmId), a.readOnly);
      if (cur.shares.some((s) => s.path === real))
        throw new CorralError(
          'conflict',
          `${real} is already shared with this VM (tag "${cur.shares.find((s) => s.path === real)!.tag}")`,
          'path',
        );
      if (share.via === 'virtiofs') {
        const why = this.support().why;
        if (why) throw new CorralError('invalid-argument', `invalid argument "via": ${why}; use 9p`, 'via', { reason: `${why}; use 9p` });
      }
      return [...cur.shares, { ...share, path: real }];
    });
  }

  remove(a: Args<'vm.share.remove'>): Promise<UpdateResult> {
    return this.change(a.vm, (cur, name) => {
      if (!cur.shares.some((s) => s.tag === a.tag))
        throw new CorralError('not-found', `"${name}" has no shared folder tagged "${a.tag}" (see corral vm share list ${name})`, 'tag');
      return cur.shares.filter((s) => s.tag !== a.tag);
    });
  }

  /** Saves the VM's new shares; a running VM takes them at its next boot. */
  private change(ref: string, next: (cur: VmConfig, name: string, vmId: string) => SharedFolder[]): Promise<UpdateResult> {
    const { ctx } = this;
    const rec = recordOf(ctx, ref);
    return ctx.locks.run(rec.id, async () => {
      const cur = recordOf(ctx, rec.id);
      const shares = next(cur.config, cur.name, cur.id);
      const saved = ctx.vms.updateConfig(cur.id, cur.name, { ...cur.config, shares }, ctx.clock.now());
      const running = ctx.registry.has(cur.id) || isLive(cur.state) || isRunning(cur.state);
      const notLive: NotLive[] = running ? [{ field: 'shares', why: SHARES_NOT_LIVE }] : [];
      const note = running ? '; pending until the next boot' : '';
      const list = shares.map((s) => `${s.tag} (${s.path}${s.readOnly ? ', read-only' : ''})`).join(', ') || 'none';
      ctx.journal.updated(saved, `Shared folders changed: ${list}${note}`);
      ctx.journal.changed(saved.id);
      return { ...this.vmService.get(saved.id), notLive };
    });
  }
}
