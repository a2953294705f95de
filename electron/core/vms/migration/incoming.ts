// The target's side of a migration (migration.* in the contract, called by the source host):
// prepare checks that the VM fits here, records it as "incoming" and starts a QEMU that waits
// for the stream (and exports new disks over NBD for local storage); finish lets the guest run
// here once the source's migration completed; abort removes everything prepare made.
import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Args, PrepareIncomingResult, VmConfig, VmInfo } from '../../api/contract.js';
import { CorralError } from '../../api/dispatcher.js';
import { bootMemoryMiB } from '../../api/rules.js';
import { MiB } from '../../api/units.js';
import type { Machine } from '../../qemu/driver.js';
import { diskNode } from '../../qemu/ids.js';
import { createQcow2 } from '../../qemu/img.js';
import { MIGRATION_TLS, MigrationCommands } from '../../qemu/migration-commands.js';
import { writeCreds, type CredsSource } from '../../qemu/tls-creds.js';
import { admit } from '../../resources/host-capacity.js';
import type { VmRecord } from '../../store/vm-repo.js';
import { ensurePrivateDir } from '../../private-files.js';
import { checkBootFiles } from '../config-checks.js';
import { recordOf, type VmContext } from '../context.js';
import { applyAtBoot } from '../live-apply.js';
import type { Supervisor } from '../supervisor.js';
import type { VmService } from '../vm-service.js';
import { adoptHistory, forgetAdopted, type Adopted, type HistoryStores } from './history.js';
import { tpmRefusal } from './refusals.js';
import { ARRIVAL_IDLE_MS } from './lease.js';

/** How long finish waits for this side of the stream to complete after the source's. */
const LOAD_WAIT_MS = 30_000;

/** What prepare made for one incoming VM: undone by abort, handed to the supervisor by finish. */
interface Arrival {
  machine: Machine | null;
  /** Disks created here for local storage (deleted on abort). */
  created: string[];
  creds: { remove(): void } | null;
  nbd: boolean;
  diskCount: number;
  /** The history that came with the VM (removed on abort); its uptime goes on at a live finish. */
  adopted: Adopted | null;
  startedAt: number | null;
  /** Drops the arrival when its source stops touching it (lease.ts). */
  idle: NodeJS.Timeout | null;
}

export interface IncomingDeps {
  ctx: VmContext;
  supervisor: Supervisor;
  service: VmService;
  /** Memory committed to running VMs (for admission). */
  committedBytes: () => number;
  /** QEMU's TLS credentials (the cluster host's certificate, or a CA); null: no encrypted migration here. */
  creds: () => CredsSource | null;
  /** Where a moved VM's journal and statistics go. */
  history: HistoryStores;
}

export class IncomingMigrations {
  private readonly arrivals = new Map<string, Arrival>();

  constructor(private readonly d: IncomingDeps) {}

  async prepare(a: Args<'migration.prepareIncoming'>): Promise<PrepareIncomingResult> {
    const { ctx } = this.d;
    if (ctx.vms.get(a.id)) throw new CorralError('conflict', `a VM with id ${a.id} already exists on this host`, 'id');
    this.refusal(a.name, a.config, a.live || a.storage === 'local');
    const ca = this.d.creds();
    const needsQemu = a.live || a.storage === 'local';
    if (a.storage === 'local' && a.diskSizes.length !== a.config.disks.length)
      throw new CorralError('invalid-argument', 'invalid argument "diskSizes": one size per disk', 'diskSizes', {
        reason: 'one size per disk',
      });
    if (a.storage === 'shared')
      a.config.disks.forEach((disk, i) => {
        ctx.pools.resolve(`disks.${i}`, disk.path, { write: true });
      });
    if (a.live) this.admitLive(a.name, a.config);

    const arrival: Arrival = {
      machine: null,
      created: [],
      creds: null,
      nbd: false,
      diskCount: a.config.disks.length,
      adopted: null,
      startedAt: a.history?.startedAt ?? null,
      idle: null,
    };
    ensurePrivateDir(ctx.vmDir(a.id));
    let config: VmConfig = a.config;
    if (a.storage === 'local') {
      const disks: VmConfig['disks'] = [];
      for (const [i, size] of a.diskSizes.entries()) {
        const file = ctx.pools.newDiskPath(a.id, i);
        if (fs.existsSync(file)) throw new CorralError('conflict', `${file} already exists on this host`, `disks.${i}`);
        await createQcow2(file, size, ctx.env);
        arrival.created.push(file);
        disks.push({ path: file, format: 'qcow2', owned: true });
      }
      config = { ...a.config, disks };
    }
    const now = ctx.clock.now();
    const h = a.history;
    let rec = ctx.vms.insert(a.id, a.name, config, now, h?.createdAt ?? now);
    this.arrivals.set(a.id, arrival);
    try {
      if (h) {
        // its past first, so that the journal reads in order
        arrival.adopted = adoptHistory(this.d.history, rec, h, now);
        ctx.vms.setRuntime(rec.id, { restarts: h.restarts, lastExit: h.lastExit }, now);
        rec = recordOf(ctx, rec.id);
      }
      ctx.journal.transition(rec, 'incoming', null, `Arriving from another host (${a.live ? 'live' : 'offline'}, ${a.storage} storage)`);
      const made = needsQemu
        ? await ctx.locks.run(a.id, () => this.launch(recordOf(ctx, a.id), a, ca!, arrival))
        : { migrationUri: null, nbd: null };
      // the source's touches begin once it has this answer: a slow launch is not idle time
      this.touch(a.id);
      return made;
    } catch (err) {
      await this.undo(a.id);
      throw err;
    }
  }

  /** migration.checkIncoming: what prepare would refuse first (storage aside), making nothing. */
  check(a: Args<'migration.checkIncoming'>): { problem: string | null } {
    try {
      this.refusal(a.name, a.config, true);
      if (a.live) this.admitLive(a.name, a.config);
      return { problem: null };
    } catch (err) {
      if (err instanceof CorralError) return { problem: err.message };
      throw err;
    }
  }

  /** Throws what keeps the VM from coming here: its name, a TPM, what QEMU lacks, files, room. */
  private refusal(name: string, config: VmConfig, needsQemu: boolean): void {
    const { ctx } = this.d;
    if (ctx.vms.nameTaken(name)) throw new CorralError('conflict', `a VM named "${name}" already exists on this host`, 'name');
    const tpm = tpmRefusal(name, config);
    if (tpm) throw new CorralError('conflict', tpm, 'config.tpm');
    const cannot = ctx.driver.problemFor(config);
    if (cannot) throw new CorralError('conflict', `this host cannot run "${name}": ${cannot}`, 'config');
    if (needsQemu && !this.d.creds())
      throw new CorralError('failed', 'this host has no TLS credentials for migrations: it cannot take an encrypted migration', 'ca');
    const owner = (real: string) => ctx.vms.list().find((o) => o.config.disks.some((d) => d.path === real))?.name ?? null;
    checkBootFiles(config, ctx.pools, owner);
  }

  /** Admission, for a guest that arrives running. */
  private admitLive(name: string, config: VmConfig): void {
    const { ctx } = this.d;
    const ok = admit(name, bootMemoryMiB(config) * MiB, this.d.committedBytes(), ctx.hostMemoryBytes(), ctx.overcommit());
    if (!ok.ok) throw new CorralError('conflict', ok.message!, 'config.memoryMiB');
  }

  /** Starts QEMU with -incoming defer and TLS; for local storage, exports its new disks over NBD. */
  private async launch(
    rec: VmRecord,
    a: Args<'migration.prepareIncoming'>,
    ca: CredsSource,
    arrival: Arrival,
  ): Promise<PrepareIncomingResult> {
    const { ctx } = this.d;
    const onSpawn = (pid: number, pidStart: string | null) => ctx.vms.setRuntime(rec.id, { pid, pidStart }, ctx.clock.now());
    const machine = await ctx.driver.launch({ id: rec.id, name: rec.name, config: rec.config, incoming: true, onSpawn });
    arrival.machine = machine;
    // QEMU gone before finish (the stream broke, or it was killed): nothing of it stays
    void machine.exited.then(() => {
      if (this.arrivals.get(rec.id) === arrival) void this.abort(rec.id).catch(() => undefined);
    });
    const m = new MigrationCommands(machine.qmp.link);
    // QEMU reads the files at object-add, as the user it dropped to: a dir that user may enter
    const creds = ctx.driver.scratchDir();
    arrival.creds = creds;
    await writeCreds(creds.dir, ca, 'server', [a.address], rec.name);
    await m.addTlsCreds(creds.dir, 'server');
    // loaded: a host's own key need not stay where QEMU's user can read it
    creds.remove();
    let nbd: PrepareIncomingResult['nbd'] = null;
    if (a.storage === 'local') {
      const port = await freePortOn(a.address);
      await m.nbdServerStart(a.address, port);
      arrival.nbd = true;
      for (let i = 0; i < rec.config.disks.length; i++) await m.exportDisk(i, diskNode(i));
      nbd = { host: a.address, port };
    }
    let migrationUri: string | null = null;
    if (a.live) {
      await m.setParameters({ tlsCreds: MIGRATION_TLS });
      await m.incoming(`tcp:${uriHost(a.address)}:0`);
      const port = (await m.query())['socket-address']?.find((s) => s.port)?.port;
      if (!port) throw new Error('QEMU did not say where it listens for the migration');
      migrationUri = `tcp:${uriHost(a.address)}:${port}`;
    }
    ctx.journal.host(rec, `Waiting for the ${a.live ? 'migration stream' : 'disks'} (pid ${machine.pid})`, 'incoming');
    return { migrationUri, nbd };
  }

  /**
   * The source is still moving this VM (migration.touchIncoming): the arrival waits another
   * ARRIVAL_IDLE_MS for it. One not touched that long is dropped, QEMU and all: its source died,
   * or the link between the hosts was cut, and it would otherwise wait for ever.
   */
  touch(vmId: string): { ok: true } {
    const arrival = this.arrivals.get(vmId);
    if (!arrival) throw new CorralError('not-found', `no VM with id ${vmId} is arriving here`, 'vm');
    if (arrival.idle) clearTimeout(arrival.idle);
    arrival.idle = setTimeout(() => void this.abandon(vmId, arrival), ARRIVAL_IDLE_MS);
    arrival.idle.unref();
    return { ok: true };
  }

  private async abandon(vmId: string, arrival: Arrival): Promise<void> {
    const { ctx } = this.d;
    const rec = ctx.vms.get(vmId);
    if (!rec || this.arrivals.get(vmId) !== arrival) return;
    await ctx.locks
      .run(vmId, async () => {
        // finished or aborted while this waited for the lock
        if (this.arrivals.get(vmId) !== arrival || ctx.vms.get(vmId)?.state !== 'incoming') return;
        ctx.journal.error(rec, `Arrival abandoned: its source host has not been heard from for ${ARRIVAL_IDLE_MS / 1000} s`);
        await this.undo(vmId);
      })
      .catch(() => undefined);
  }

  /**
   * The source's migration completed (live) or its disks are copied (offline): the guest runs
   * here now, or the VM is stopped here. Refused unless this QEMU's side completed too.
   */
  async finish(a: Args<'migration.finishIncoming'>): Promise<VmInfo> {
    const { ctx, supervisor } = this.d;
    const rec = recordOf(ctx, a.vm);
    return ctx.locks.run(rec.id, async () => {
      const cur = recordOf(ctx, rec.id);
      const arrival = this.arrivals.get(cur.id);
      if (cur.state !== 'incoming' || !arrival) throw new CorralError('conflict', `"${cur.name}" is not arriving (it is ${cur.state})`);
      const { machine } = arrival;
      if (a.live && !machine) throw new CorralError('conflict', `"${cur.name}" has no QEMU waiting for a live migration`);
      if (machine) {
        const m = new MigrationCommands(machine.qmp.link);
        if (a.live) await this.waitLoaded(m, cur.name);
        // the export holds write access: it must be gone before the guest writes
        if (arrival.nbd) {
          for (let i = 0; i < arrival.diskCount; i++) await m.unexportDisk(i);
          await m.nbdServerStop();
        }
      }
      arrival.creds?.remove();
      if (!a.live) {
        this.arrivals.delete(cur.id);
        if (machine) {
          machine.signal('SIGKILL');
          await machine.exited;
          ctx.driver.cleanup(cur.id);
        }
        const after = ctx.journal.transition(cur, 'stopped', null, 'Moved here from another host (offline)', {
          patch: { pid: null, pidStart: null },
        });
        return ctx.describe(after);
      }
      this.arrivals.delete(cur.id);
      const run = supervisor.adopt(cur.id, machine!);
      try {
        await applyAtBoot(ctx, run, cur);
        await machine!.qmp.cont();
      } catch (err) {
        // not running here: the source may resume; nothing of this run stays
        run.requested = 'kill';
        machine!.signal('SIGKILL');
        await run.ended;
        this.d.service.remove(recordOf(ctx, cur.id), true, `Arrival failed: ${(err as Error).message}`);
        throw new CorralError('failed', `"${cur.name}" could not run here: ${(err as Error).message}`);
      }
      // the guest has been up since it started on the source; its liveness probe gets a new
      // start-up window here all the same (the forwards it goes through are new)
      const now = ctx.clock.now();
      const after = supervisor.reachedRunning(
        run,
        `Running here after a live migration (pid ${machine!.pid})`,
        { applied: cur.config, startedAt: arrival.startedAt ?? now },
        now,
      );
      return ctx.describe(after);
    });
  }

  /**
   * The source says done a moment before this side has loaded the last of the device state:
   * waits for this QEMU's own "completed", and refuses anything else.
   */
  private async waitLoaded(m: MigrationCommands, name: string): Promise<void> {
    const deadline = Date.now() + LOAD_WAIT_MS;
    for (;;) {
      const status = (await m.query()).status;
      if (status === 'completed') return;
      if (status !== 'active' && status !== 'device' && status !== 'setup')
        throw new CorralError('conflict', `the migration of "${name}" did not complete here (${status ?? 'none'})`);
      if (Date.now() > deadline) throw new CorralError('conflict', `the migration of "${name}" has not completed here (${status})`);
      await sleep(20);
    }
  }

  /** Removes an incoming VM and all prepare made; false when there was none. Refused once it runs here. */
  async abort(vmId: string): Promise<{ aborted: boolean }> {
    const { ctx } = this.d;
    const rec = ctx.vms.get(vmId);
    if (!rec) return { aborted: false };
    return ctx.locks.run(rec.id, async () => {
      const cur = ctx.vms.get(rec.id);
      if (!cur) return { aborted: false };
      if (cur.state !== 'incoming') throw new CorralError('conflict', `"${cur.name}" is ${cur.state} here: it is no longer arriving`);
      await this.undo(cur.id);
      return { aborted: true };
    });
  }

  private async undo(vmId: string): Promise<void> {
    const { ctx } = this.d;
    const arrival = this.arrivals.get(vmId);
    this.arrivals.delete(vmId);
    if (arrival?.idle) clearTimeout(arrival.idle);
    if (arrival?.machine) {
      arrival.machine.signal('SIGKILL');
      await arrival.machine.exited;
    }
    arrival?.creds?.remove();
    if (arrival?.adopted) forgetAdopted(this.d.history, vmId, arrival.adopted);
    ctx.driver.cleanup(vmId);
    const rec = ctx.vms.get(vmId);
    // the disks made here go; a shared disk is the source's and stays
    const madeHere = (d: { path: string }, i: number) => d.path === ctx.pools.newDiskPath(vmId, i);
    const local = !!rec?.config.disks.length && rec.config.disks.every(madeHere);
    if (rec) this.d.service.remove(rec, !local, 'Arrival cancelled: removed what was made for it');
    for (const f of arrival?.created ?? []) fs.rmSync(f, { force: true });
  }

  /** At host start: an arrival the previous host left cannot be finished (its source gave up). */
  async dropLeftovers(): Promise<void> {
    const { ctx } = this.d;
    for (const rec of ctx.vms.list().filter((r) => r.state === 'incoming')) {
      const pid = ctx.driver.findRunning(rec.id, rec.pid, rec.pidStart);
      if (pid) ctx.driver.kill(pid);
      await ctx.locks.run(rec.id, () => this.undo(rec.id));
    }
  }
}

/** An address in a tcp: URI (IPv6 in brackets). */
export function uriHost(address: string): string {
  return net.isIPv6(address) ? `[${address}]` : address;
}

/** A port free on `address` now: QEMU's NBD server cannot say which port it took. */
function freePortOn(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err) =>
      reject(new CorralError('failed', `cannot listen on ${address} here: ${err.message} (is it this host's address?)`, 'address')),
    );
    srv.listen(0, address, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
