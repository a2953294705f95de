// The source's side of a migration (vm.migrate): checks, the target prepared over a peer
// connection, local disks mirrored into the target's NBD exports, the RAM sent over TLS,
// progress, cancel, then the switch-over. Failure before the target runs the guest leaves it
// running here; the source QEMU ends as "migrated" only once the target confirms.
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Args, MigrateResult, MigrationProgress, MigrationStorage, PrepareIncomingResult } from '../../api/contract.js';
import { CorralError } from '../../api/dispatcher.js';
import { isRunning } from '../../api/rules.js';
import { diskNode } from '../../qemu/ids.js';
import { imageVirtualSize } from '../../qemu/img.js';
import {
  MIGRATION_TLS,
  MigrationCommands,
  mirrorJob,
  nbdTargetNode,
  type BlockJob,
  type MigrationInfo,
} from '../../qemu/migration-commands.js';
import { copyToNbd } from '../../qemu/nbd-copy.js';
import { writeCreds, type CredsSource } from '../../qemu/tls-creds.js';
import type { VmRecord } from '../../store/vm-repo.js';
import { recordOf, formatDelay, type VmContext } from '../context.js';
import type { RunningVm } from '../registry.js';
import type { VmService } from '../vm-service.js';
import type { PeerClient, PeerConnector } from './peer.js';
import { historyOf, type HistoryStores } from './history.js';
import { tpmRefusal } from './refusals.js';
import { TargetLease, within } from './lease.js';
import { StallWatch } from './stall.js';
import { ProgressReporter } from './progress.js';

const POLL_MS = 250;
/** How long an abort may wait for the target: one that cannot be reached drops the arrival itself (lease.ts). */
const ABORT_WAIT_MS = 10_000;

export interface OutgoingDeps {
  ctx: VmContext;
  service: VmService;
  connect: PeerConnector;
  /** QEMU's TLS credentials: the cluster host's certificate, or a CA this host was given. */
  creds: () => CredsSource | null;
  /** The VM's journal and statistics, which travel with it. */
  history: HistoryStores;
  /** This host's name, as the moved events will name it. */
  here: () => string;
}

/** A migration under way: cancel flips the flag and pokes QEMU. */
interface Flight {
  cancelled: boolean;
  cancel: () => Promise<void>;
}

export class OutgoingMigrations extends EventEmitter<{ progress: [MigrationProgress] }> {
  private readonly flights = new Map<string, Flight>();

  constructor(private readonly d: OutgoingDeps) {
    super();
  }

  async migrate(a: Args<'vm.migrate'>): Promise<MigrateResult> {
    const { ctx } = this.d;
    const rec = recordOf(ctx, a.vm);
    if (this.flights.has(rec.id)) throw new CorralError('conflict', `"${rec.name}" is already being migrated`);
    const tpm = tpmRefusal(rec.name, rec.config);
    if (tpm) throw new CorralError('conflict', tpm, 'vm');
    const flight: Flight = { cancelled: false, cancel: async () => undefined };
    this.flights.set(rec.id, flight);
    let peer: PeerClient | null = null;
    try {
      peer = await this.d.connect(a.to, a.token);
      return await ctx.locks.run(rec.id, () => this.move(recordOf(ctx, rec.id), a, peer!, flight));
    } finally {
      this.flights.delete(rec.id);
      peer?.close();
    }
  }

  async cancel(ref: string): Promise<void> {
    const rec = recordOf(this.d.ctx, ref);
    const flight = this.flights.get(rec.id);
    if (!flight) throw new CorralError('conflict', `"${rec.name}" is not being migrated`);
    flight.cancelled = true;
    await flight.cancel();
  }

  private async move(rec: VmRecord, a: Args<'vm.migrate'>, peer: PeerClient, flight: Flight): Promise<MigrateResult> {
    const { ctx } = this.d;
    const live = isRunning(rec.state);
    if (rec.state === 'paused') throw new CorralError('conflict', `"${rec.name}" is paused: resume it before moving it`);
    if (!live && !['stopped', 'crashed'].includes(rec.state))
      throw new CorralError('conflict', `"${rec.name}" is ${rec.state}: it moves when running or stopped`);
    const storage = await this.storageFor(rec, a.storage, peer);
    const ca = this.d.creds();
    if ((live || storage === 'local') && !ca)
      throw new CorralError(
        'failed',
        'this host has no TLS credentials for migrations (a cluster certificate or a migration CA): the stream is never sent unencrypted',
        'ca',
      );
    const diskSizes =
      storage === 'local' ? await Promise.all(rec.config.disks.map((d) => imageVirtualSize(d.path, d.format, ctx.env))) : [];
    const started = Date.now();
    ctx.journal.note(rec, `Moving to ${a.to} (${live ? 'live' : 'offline'}, ${storage} storage)`);
    const prep = await peer.call('migration.prepareIncoming', {
      id: rec.id,
      name: rec.name,
      config: rec.config,
      storage,
      live,
      address: peer.address,
      diskSizes,
      history: historyOf(this.d.history, recordOf(ctx, rec.id), this.d.here(), ctx.clock.now()),
    });
    let downtimeMs: number | null = null;
    // a target that stops answering ends the move (an offline copy is killed at once)
    const lease = new TargetLease(peer, rec.id);
    lease.start();
    try {
      if (live) downtimeMs = await this.sendLive(rec, a, prep, ca!, flight, peer, lease);
      else {
        if (storage === 'local') await this.copyDisks(rec, prep, ca!, lease);
        if (flight.cancelled) throw new CorralError('conflict', 'cancelled by the user');
        await peer.call('migration.finishIncoming', { vm: rec.id, live: false });
      }
    } catch (err) {
      const why = (err as Error).message;
      if (!(err instanceof Switched))
        await within(ABORT_WAIT_MS, peer.call('migration.abortIncoming', { vm: rec.id })).catch(() => undefined);
      ctx.journal.error(recordOf(ctx, rec.id), `Migration to ${a.to} failed: ${why}`);
      if (err instanceof Switched) throw err;
      const code = err instanceof CorralError ? err.code : 'failed';
      const stays = live ? '; it runs here still' : '; it stays here';
      if (flight.cancelled) throw new CorralError(code, `the migration of "${rec.name}" was cancelled${stays}`);
      throw new CorralError(code, `the migration of "${rec.name}" to ${a.to} failed: ${why}${stays}`);
    } finally {
      lease.stop();
    }
    const totalMs = Date.now() - started;
    // it runs (or is kept) on the target now: only the record and this host's copies go
    this.d.service.remove(
      recordOf(ctx, rec.id),
      storage === 'shared',
      `Moved to ${a.to} in ${formatDelay(totalMs)}${downtimeMs !== null ? ` (paused ${downtimeMs} ms)` : ''}`,
    );
    return { vm: rec.name, to: a.to, live, storage, totalMs, downtimeMs };
  }

  /** shared when the target has a pool holding every disk at the same path. */
  private async storageFor(rec: VmRecord, asked: Args<'vm.migrate'>['storage'], peer: PeerClient): Promise<MigrationStorage> {
    if (asked !== 'auto') return asked;
    if (!rec.config.disks.length) return 'shared';
    const pools = await peer.call('pool.list', {});
    const inPool = (file: string) => pools.some((p) => file.startsWith(p.path.endsWith('/') ? p.path : `${p.path}/`));
    return rec.config.disks.every((d) => inPool(d.path)) ? 'shared' : 'local';
  }

  /** The live part: returns QEMU's downtime figure once the guest runs on the target. */
  private async sendLive(
    rec: VmRecord,
    a: Args<'vm.migrate'>,
    prep: PrepareIncomingResult,
    ca: CredsSource,
    flight: Flight,
    peer: PeerClient,
    lease: TargetLease,
  ): Promise<number | null> {
    const { ctx } = this.d;
    const run = ctx.registry.get(rec.id);
    if (!run) throw new CorralError('conflict', `"${rec.name}" is not running`);
    const m = new MigrationCommands(run.machine.qmp.link);
    const disks = rec.config.disks.length;
    const mirrored = prep.nbd ? disks : 0;
    let migrating = false;
    flight.cancel = async () => {
      if (migrating) await m.cancel().catch(() => undefined);
      for (let i = 0; i < mirrored; i++) await m.cancelJob(mirrorJob(i), true).catch(() => undefined);
    };
    const creds = ctx.driver.scratchDir();
    const progress = new ProgressReporter(
      rec,
      a.to,
      (p) => this.emit('progress', p),
      (msg) => ctx.journal.note(recordOf(ctx, rec.id), msg),
    );
    let completed = false;
    try {
      await writeCreds(creds.dir, ca, 'client', [], ctx.vms.get(rec.id)?.name ?? rec.name);
      // a guest that arrived here by migration still has the server end of that one under the same id
      await m.setParameters({ tlsCreds: '' }).catch(() => undefined);
      await m.delTlsCreds().catch(() => undefined);
      await m.addTlsCreds(creds.dir, 'client');
      // QEMU has loaded them: a host's own key need not lie in a dir QEMU's user can read any longer
      creds.remove();
      if (prep.nbd) {
        for (let i = 0; i < disks; i++) {
          await m.addNbdTarget(i, prep.nbd.host, prep.nbd.port);
          await m.mirror(i, diskNode(i));
        }
        await this.waitMirrorsReady(m, disks, flight, progress, lease);
      }
      if (flight.cancelled) throw new CorralError('conflict', 'cancelled by the user');
      await m.setCapabilities({ 'auto-converge': true });
      await m.setParameters({ tlsCreds: MIGRATION_TLS, downtimeLimitMs: a.maxDowntimeMs });
      migrating = true;
      await m.migrate(prep.migrationUri!);
      const info = await this.waitMigrated(m, flight, progress, mirrored > 0, lease);
      completed = true;
      // the source is paused for good now; a ready mirror ends with the target a consistent copy
      for (let i = 0; i < mirrored; i++) await m.cancelJob(mirrorJob(i));
      await this.waitJobsGone(m);
      for (let i = 0; i < mirrored; i++) await m.delNode(nbdTargetNode(i)).catch(() => undefined);
      await this.switchOver(rec, run, peer, lease);
      progress.report('done', info);
      return info.downtime ?? null;
    } catch (err) {
      progress.report('failed', null);
      if (!completed) await this.rollBack(m, mirrored);
      throw err;
    } finally {
      creds.remove();
    }
  }

  /**
   * The target runs the guest, then this QEMU ends as migrated. Never two copies: if the target
   * did not take it and says so (abort), the guest resumes here; if the target cannot say, it
   * stays paused here and the error says so.
   */
  private async switchOver(rec: VmRecord, run: RunningVm, peer: PeerClient, lease: TargetLease): Promise<void> {
    const { ctx } = this.d;
    try {
      // unanswered, the target may or may not run the guest: the abort below tells which
      await lease.guard(peer.call('migration.finishIncoming', { vm: rec.id, live: true }));
    } catch (err) {
      const aborted = await within(ABORT_WAIT_MS, peer.call('migration.abortIncoming', { vm: rec.id })).catch(() => null);
      if (aborted) {
        await run.machine.qmp.cont();
        ctx.journal.note(recordOf(ctx, rec.id), 'The target did not take the guest: it runs here again');
        throw new Switched(`the target did not start the guest (${(err as Error).message}); it runs here again`);
      }
      throw new Switched(
        `the target did not confirm (${(err as Error).message}); the guest stays paused here: check the target before resuming it here`,
      );
    }
    run.requested = 'migrated';
    run.machine.signal('SIGTERM');
    await run.ended;
  }

  private async rollBack(m: MigrationCommands, mirrored: number): Promise<void> {
    await m.cancel().catch(() => undefined);
    for (let i = 0; i < mirrored; i++) await m.cancelJob(mirrorJob(i), true).catch(() => undefined);
    await this.waitJobsGone(m).catch(() => undefined);
    for (let i = 0; i < mirrored; i++) await m.delNode(nbdTargetNode(i)).catch(() => undefined);
    // QEMU resumes a guest whose migration failed or was cancelled by itself
    await m.setParameters({ tlsCreds: '' }).catch(() => undefined);
    await m.delTlsCreds().catch(() => undefined);
  }

  private async waitMirrorsReady(
    m: MigrationCommands,
    disks: number,
    flight: Flight,
    progress: ProgressReporter,
    lease: TargetLease,
  ): Promise<void> {
    const stall = new StallWatch('the copy of the disks');
    for (;;) {
      if (flight.cancelled) throw new CorralError('conflict', 'cancelled by the user');
      lease.check();
      const jobs = await m.queryJobs();
      const ours = Array.from({ length: disks }, (_, i) => jobs.find((j) => j.device === mirrorJob(i)));
      const gone = ours.findIndex((j) => !j || j.status === 'concluded' || j.status === 'aborting');
      if (gone >= 0) throw new CorralError('failed', `the copy of disk ${gone} to the target stopped (the target or the link failed)`);
      progress.disks(ours as BlockJob[]);
      progress.report('disks', null);
      if (ours.every((j) => j!.ready)) return;
      stall.check(...ours.map((j) => j!.offset));
      await sleep(POLL_MS);
    }
  }

  private async waitMigrated(
    m: MigrationCommands,
    flight: Flight,
    progress: ProgressReporter,
    mirrors: boolean,
    lease: TargetLease,
  ): Promise<MigrationInfo> {
    const stall = new StallWatch('the migration stream');
    for (;;) {
      lease.check();
      const info = await m.query();
      const jobs = mirrors ? (await m.queryJobs()).filter((j) => j.device.startsWith('mig-mirror')) : [];
      if (mirrors) progress.disks(jobs);
      switch (info.status) {
        case 'completed':
          return info;
        case 'failed':
          throw new CorralError('failed', info['error-desc'] ?? 'QEMU reported the migration failed');
        case 'cancelled':
          throw new CorralError('conflict', flight.cancelled ? 'cancelled by the user' : 'the migration was cancelled');
      }
      if (flight.cancelled) await m.cancel().catch(() => undefined);
      else stall.check(info.ram?.transferred ?? 0, ...jobs.map((j) => j.offset));
      progress.report(info.status === 'device' || info.status === 'pre-switchover' ? 'switch-over' : 'memory', info);
      await sleep(POLL_MS);
    }
  }

  private async waitJobsGone(m: MigrationCommands): Promise<void> {
    const deadline = Date.now() + 60_000;
    while ((await m.queryJobs()).some((j) => j.device.startsWith('mig-mirror'))) {
      if (Date.now() > deadline) throw new CorralError('failed', 'the disk mirrors did not end');
      await sleep(50);
    }
  }

  /** An offline move with local storage: each disk written into the target's NBD export. */
  private async copyDisks(rec: VmRecord, prep: PrepareIncomingResult, ca: CredsSource, lease: TargetLease): Promise<void> {
    const { ctx } = this.d;
    const creds = ctx.driver.scratchDir();
    try {
      await writeCreds(creds.dir, ca, 'client', [], rec.name);
      for (const [i, d] of rec.config.disks.entries()) {
        ctx.journal.note(rec, `Copying disk ${i} to the target`);
        await copyToNbd(d.path, d.format, { host: prep.nbd!.host, port: prep.nbd!.port, index: i }, creds.dir, ctx.env, lease.signal).catch(
          (err: Error) => {
            lease.check();
            throw err;
          },
        );
      }
    } finally {
      creds.remove();
    }
  }
}

/** An error after the source's migration completed: the target must not be aborted blindly. */
class Switched extends CorralError {
  constructor(message: string) {
    super('failed', message);
  }
}
