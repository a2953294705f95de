// Owns every VM's lifecycle and supervises the running ones: create/edit/delete,
// start/stop/kill/reset/pause/resume, the QEMU processes, hang detection, the restart policy
// (backoff, crash-loop limit) and the reattachment to guests a previous host left running.
// Operations on one VM are serialized, so two simultaneous starts never yield two QEMUs.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Args,
  type CrashReport,
  type EventRecord,
  type ExitInfo,
  type ExitReason,
  type VmConfig,
  type VmInfo,
  type VmState,
} from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { logSize, SerialLink } from '../consoles/serial.js';
import { ensurePrivateDir, vmFiles, type DataLayout, type VmFiles } from '../paths.js';
import { MiB } from '../api/units.js';
import { bootMaxCpus, bootMemoryMiB, buildArgv } from '../qemu/argv.js';
import { createQcow2, imageSizeFast, imageVirtualSize, resizeImage } from '../qemu/img.js';
import type { Cgroups } from '../resources/cgroups.js';
import { admit, readHostMemory } from '../resources/host-capacity.js';
import { growDisk, hotplugCpus, setBalloon, throttle } from '../resources/live.js';
import { attachQemu, cleanRunDir, launchQemu, type ExitFacts, type QemuProcess } from '../qemu/launcher.js';
import { isSameProcess, readPidFile } from '../qemu/proc.js';
import type { QemuCaps } from '../qemu/probe.js';
import type { QmpEvent } from '../qemu/qmp.js';
import type { EventRepo } from '../store/event-repo.js';
import { publicInfo, type VmRecord, type VmRepo } from '../store/vm-repo.js';
import { checkBootFiles, checkExistingImage, checkNetwork } from './config-checks.js';
import { crashReport } from './crash-report.js';
import { DEFAULT_HEALTH, HealthWatch, type HealthTiming } from './health.js';
import { makeProbe } from './liveness.js';
import * as policy from './restart-policy.js';
import { canTransition, classifyEnd, describeEnd, isCleanEnd, isLive, type Requested } from './state.js';

export interface ManagerDeps {
  layout: DataLayout;
  vms: VmRepo;
  events: EventRepo;
  caps: QemuCaps;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  random?: () => number;
  health?: Partial<HealthTiming>;
  cgroups?: Cgroups;
  /** Memory overcommit ratio for admission (a host setting). */
  overcommit?: () => number;
}

export interface Notification {
  vmId: string;
  vmName: string;
  level: 'info' | 'warning' | 'error';
  title: string;
  body: string;
}

export interface ManagerEvents {
  changed: [VmInfo];
  removed: [{ id: string; name: string }];
  logged: [EventRecord];
  notify: [Notification];
  serialData: [string, Buffer, number];
  serialClosed: [string];
}

/** A QEMU this host is watching. */
class Runtime {
  requested: Requested = null;
  shutdown: { guest: boolean; reason: string } | null = null;
  panicked = false;
  watchdog = false;
  hung: 'qemu-hung' | 'guest-hung' | null = null;
  hungWhy = '';
  /** A stop that had to be forced because the guest ignored the power button. */
  forced = false;
  /** Recent QMP events, kept for crash reports. */
  recentEvents: QmpEvent[] = [];
  serial: SerialLink | null = null;
  health: HealthWatch | null = null;
  ended: Promise<void> = Promise.resolve();

  constructor(
    readonly vmId: string,
    readonly files: VmFiles,
    readonly proc: QemuProcess,
  ) {}
}

/** States without a QEMU from which a start is allowed. */
const STARTABLE: readonly VmState[] = ['stopped', 'crashed', 'restarting', 'crash-loop'];

export class VmManager extends EventEmitter<ManagerEvents> {
  private readonly runtimes = new Map<string, Runtime>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly restartTimers = new Map<string, NodeJS.Timeout>();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly env: NodeJS.ProcessEnv;
  private readonly health: HealthTiming;
  private closing = false;

  constructor(private readonly d: ManagerDeps) {
    super();
    this.now = d.now ?? Date.now;
    this.random = d.random ?? Math.random;
    this.env = d.env ?? process.env;
    this.health = { ...DEFAULT_HEALTH, ...d.health };
  }

  // ---- queries --------------------------------------------------------------------------

  list(): VmInfo[] {
    return this.d.vms.list().map((r) => this.info(r));
  }

  get(ref: string): VmInfo {
    return this.info(this.record(ref));
  }

  private info(rec: VmRecord): VmInfo {
    return publicInfo(
      rec,
      rec.config.disks.map((d) => imageSizeFast(d.path, d.format)),
    );
  }

  private record(ref: string): VmRecord {
    const rec = this.d.vms.find(ref);
    if (!rec) throw new CorralError('not-found', `no VM named "${ref}"`, 'vm');
    return rec;
  }

  filesOf(vmId: string): VmFiles {
    return vmFiles(this.d.layout, vmId);
  }

  /** The VNC socket of a running VM, or null. */
  vncSocketOf(vmId: string): string | null {
    return this.runtimes.has(vmId) ? this.filesOf(vmId).vncSocket : null;
  }

  /** The guest's screen as PNG bytes (QMP screendump into the private run dir). */
  async screenshot(ref: string): Promise<Buffer> {
    const rec = this.record(ref);
    const rt = this.runtimes.get(rec.id);
    if (!rt) throw new CorralError('conflict', `"${rec.name}" is not running`);
    const file = path.join(rt.files.runDir, `screen-${randomBytes(4).toString('hex')}.png`);
    try {
      await rt.proc.qmp.execute('screendump', { filename: file, format: 'png' }, 10_000);
      return fs.readFileSync(file);
    } finally {
      fs.rmSync(file, { force: true });
    }
  }

  /** A human monitor command (the caller has checked it against the read-only allowlist). */
  async monitor(ref: string, command: string): Promise<string> {
    const rec = this.record(ref);
    const rt = this.runtimes.get(rec.id);
    if (!rt) throw new CorralError('conflict', `"${rec.name}" is not running`);
    return rt.proc.qmp.execute<string>('human-monitor-command', { 'command-line': command }, 10_000);
  }

  /** The serial link of a running VM, if it has one. */
  serialLinkOf(vmId: string): SerialLink | null {
    return this.runtimes.get(vmId)?.serial ?? null;
  }

  /** The live serial link of a running VM. */
  serialOf(ref: string): SerialLink {
    const rec = this.record(ref);
    const link = this.runtimes.get(rec.id)?.serial;
    if (!link || link.closed) throw new CorralError('conflict', `"${rec.name}" is not running`);
    return link;
  }

  // ---- configuration ----------------------------------------------------------------------

  async create(a: Args<'vm.create'>): Promise<VmInfo> {
    if (this.d.vms.nameTaken(a.name)) throw new CorralError('conflict', `a VM named "${a.name}" already exists`, 'name');
    checkBootFiles(a);
    checkNetwork(a);
    checkResources({ ...a, disks: [] } as VmConfig);
    if ((a.cpuWeight !== null || a.cpuCapPercent !== null) && !this.d.cgroups?.status.available) {
      throw new CorralError(
        'conflict',
        `CPU weight and cap are unavailable on this host: ${this.d.cgroups?.status.reason ?? 'no cgroup support'}`,
        a.cpuWeight !== null ? 'cpuWeight' : 'cpuCapPercent',
      );
    }
    let id: string;
    do id = randomBytes(6).toString('hex');
    while (this.d.vms.get(id));
    const files = this.filesOf(id);
    ensurePrivateDir(files.dir);
    try {
      const disks: VmConfig['disks'] = [];
      if (a.disk && 'size' in a.disk) {
        const file = path.join(files.dir, 'disk0.qcow2');
        await createQcow2(file, a.disk.size, this.env);
        disks.push({ path: file, format: 'qcow2', owned: true });
      } else if (a.disk) {
        const img = await checkExistingImage(a.disk.image, a.disk.format, this.env);
        const owner = this.d.vms.list().find((o) => o.config.disks.some((d) => d.path === img.path));
        if (owner) throw new CorralError('conflict', `${img.path} is already a disk of "${owner.name}"`, 'disk.image');
        disks.push({ ...img, owned: false });
      }
      const { name: _n, disk: _d, ...rest } = a;
      const rec = this.d.vms.insert(id, a.name, { ...rest, disks }, this.now());
      this.log(rec, 'created', null, null, null, `Created "${a.name}"`);
      this.emitChanged(rec.id);
      return this.info(rec);
    } catch (err) {
      fs.rmSync(files.dir, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Saves new settings. On a running VM, what QEMU or the host can change live is applied at
   * once (balloon, vCPU hotplug, I/O limits, cgroups, supervision); the rest is pending until
   * the next boot. With `live`, anything that cannot be applied now is refused instead.
   */
  update(a: Args<'vm.update'>): Promise<VmInfo> {
    const rec = this.record(a.vm);
    return this.locked(rec.id, async () => {
      const cur = this.record(rec.id);
      const { vm: _vm, live: liveOnly, ...fields } = a;
      const changed = (Object.keys(fields) as Array<keyof typeof fields>).filter((k) => fields[k] !== undefined);
      const name = a.name ?? cur.name;
      if (a.name !== undefined && this.d.vms.nameTaken(a.name, cur.id))
        throw new CorralError('conflict', `a VM named "${a.name}" already exists`, 'name');
      const next: VmConfig = { ...cur.config };
      for (const key of changed) if (key !== 'name') (next as Record<string, unknown>)[key] = fields[key];
      checkBootFiles(next);
      checkNetwork(next);
      if (
        (changed.includes('cpuWeight') && next.cpuWeight !== null) ||
        (changed.includes('cpuCapPercent') && next.cpuCapPercent !== null)
      ) {
        if (!this.d.cgroups?.status.available) {
          const field = changed.includes('cpuWeight') ? 'cpuWeight' : 'cpuCapPercent';
          throw new CorralError(
            'conflict',
            `CPU weight and cap are unavailable on this host: ${this.d.cgroups?.status.reason ?? 'no cgroup support'}`,
            field,
          );
        }
      }
      const rt = this.runtimes.get(cur.id);
      const running = !!rt && (cur.state === 'running' || cur.state === 'paused');
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
      const notLive = running ? changed.filter((k) => k !== 'name' && this.liveBlocker(k, next, applied!) !== null) : [];
      if (liveOnly && notLive.length) {
        const k = notLive[0]!;
        throw new CorralError('conflict', `cannot apply ${notLive.join(', ')} live: ${this.liveBlocker(k, next, applied!)}`, k);
      }
      const saved = this.d.vms.updateConfig(cur.id, name, next, this.now());
      const failures: string[] = [];
      if (running && applied) {
        for (const key of changed) {
          if (key === 'name' || notLive.includes(key)) continue;
          try {
            await this.applyLive(rt!, key, next, applied);
            (applied as Record<string, unknown>)[key] = next[key as keyof VmConfig];
          } catch (err) {
            failures.push(`${key}: ${(err as Error).message}`);
          }
        }
        this.d.vms.setRuntime(cur.id, { applied }, this.now());
      }
      const now = this.record(cur.id);
      const pendingNote = now.pending.length ? `; pending until the next boot: ${now.pending.join(', ')}` : '';
      this.log(saved, 'updated', null, null, null, `Settings changed: ${changed.join(', ') || 'nothing'}${pendingNote}`);
      for (const f of failures) this.log(saved, 'error', null, null, null, `Could not apply live: ${f}`);
      if (liveOnly && failures.length) throw new CorralError('failed', `could not apply live: ${failures.join('; ')}`);
      // a policy switched to "never" cancels a pending restart
      if (now.state === 'restarting' && next.restart === 'never')
        this.cancelRestart(now, 'stopped', 'Restart cancelled: policy is now "never"');
      if (rt && changed.includes('liveness')) this.watchHealth(rt, next);
      this.emitChanged(saved.id);
      return this.get(saved.id);
    });
  }

  /** Why a setting cannot change on the running VM (null: it can). */
  private liveBlocker(key: string, next: VmConfig, applied: VmConfig): string | null {
    switch (key) {
      case 'restart':
      case 'maxCrashes':
      case 'crashWindowSec':
      case 'liveness':
      case 'ioBps':
      case 'ioIops':
        return null;
      case 'memoryMiB':
        return next.memoryMiB <= bootMemoryMiB(applied)
          ? null
          : `it booted with ${bootMemoryMiB(applied)} MiB, the most the balloon can give`;
      case 'cpus':
        if (next.cpus < applied.cpus) return 'vCPUs can be added to a running guest, not removed';
        return next.cpus <= bootMaxCpus(applied) ? null : `it booted with room for ${bootMaxCpus(applied)} vCPUs (max vCPUs)`;
      case 'cpuWeight':
      case 'cpuCapPercent':
        return this.d.cgroups?.status.available ? null : `cgroups unavailable: ${this.d.cgroups?.status.reason ?? ''}`;
      default:
        return 'it is part of how QEMU was started';
    }
  }

  private async applyLive(rt: Runtime, key: string, next: VmConfig, applied: VmConfig): Promise<void> {
    const qmp = rt.proc.qmp;
    switch (key) {
      case 'memoryMiB':
        return setBalloon(qmp, next.memoryMiB);
      case 'cpus':
        await hotplugCpus(qmp, next.cpus);
        return;
      case 'ioBps':
      case 'ioIops':
        return throttle(qmp, next);
      case 'cpuWeight':
      case 'cpuCapPercent':
        if (applied.cpuWeight === null && applied.cpuCapPercent === null)
          this.d.cgroups!.place(rt.vmId, rt.proc.pid, next.cpuWeight, next.cpuCapPercent);
        else this.d.cgroups!.apply(rt.vmId, next.cpuWeight, next.cpuCapPercent);
        return;
    }
  }

  /** Grows a disk: block_resize while running, qemu-img resize while stopped. */
  resizeDisk(ref: string, index: number, size: number): Promise<VmInfo> {
    const rec = this.record(ref);
    return this.locked(rec.id, async () => {
      const cur = this.record(rec.id);
      const disk = cur.config.disks[index];
      if (!disk) throw new CorralError('invalid-argument', `invalid argument "disk": "${cur.name}" has no disk ${index}`, 'disk');
      const current = await imageVirtualSize(disk.path, disk.format, this.env);
      if (size <= current)
        throw new CorralError(
          'invalid-argument',
          `invalid argument "size": disks only grow; disk ${index} is already ${current} bytes`,
          'size',
        );
      const rt = this.runtimes.get(cur.id);
      if (rt) await growDisk(rt.proc.qmp, index, size);
      else if (isLive(cur.state)) throw new CorralError('conflict', `"${cur.name}" is ${cur.state}: try again in a moment`);
      else await resizeImage(disk.path, disk.format, size, this.env);
      this.log(cur, 'updated', null, null, null, `Disk ${index} grown to ${size} bytes${rt ? ' (live)' : ''}`);
      this.emitChanged(cur.id);
      return this.get(cur.id);
    });
  }

  async delete(ref: string, keepDisks: boolean): Promise<void> {
    const rec = this.record(ref);
    await this.locked(rec.id, () => {
      const cur = this.record(rec.id);
      if (isLive(cur.state)) throw new CorralError('conflict', `"${cur.name}" is ${cur.state}: stop it before deleting it`);
      this.clearRestartTimer(cur.id);
      const files = this.filesOf(cur.id);
      this.d.vms.delete(cur.id);
      for (const disk of cur.config.disks) {
        if (disk.owned && !keepDisks) fs.rmSync(disk.path, { force: true });
      }
      fs.rmSync(files.runDir, { recursive: true, force: true });
      // logs, rotated logs, known_hosts…: everything Corral keeps for the VM, except disks to keep
      const keep = new Set(cur.config.disks.filter((d) => !d.owned || keepDisks).map((d) => d.path));
      for (const entry of fs.existsSync(files.dir) ? fs.readdirSync(files.dir) : []) {
        const p = path.join(files.dir, entry);
        if (!keep.has(p)) fs.rmSync(p, { recursive: true, force: true });
      }
      try {
        fs.rmdirSync(files.dir); // only if empty: kept disks stay where they are
      } catch {
        // kept disks remain
      }
      const kept = keepDisks ? cur.config.disks.filter((d) => d.owned).map((d) => d.path) : [];
      this.log(cur, 'deleted', cur.state, null, null, `Deleted "${cur.name}"${kept.length ? `; kept ${kept.join(', ')}` : ''}`);
      this.emit('removed', { id: cur.id, name: cur.name });
    });
  }

  // ---- lifecycle ------------------------------------------------------------------------

  /** A start by the user: clears a crash-loop and the restart counters, wins over a pending restart. */
  start(ref: string): Promise<VmInfo> {
    const rec = this.record(ref);
    return this.locked(rec.id, async () => {
      const cur = this.record(rec.id);
      if (!STARTABLE.includes(cur.state)) throw new CorralError('conflict', `"${cur.name}" is already ${cur.state}`);
      this.clearRestartTimer(cur.id);
      this.d.vms.setRuntime(cur.id, { policyState: policy.onUserStart(), restartAt: null }, this.now());
      return this.launch(cur, false);
    });
  }

  private async launch(cur: VmRecord, automatic: boolean): Promise<VmInfo> {
    const files = this.filesOf(cur.id);
    // A QEMU for this VM must never run twice, whatever the database says.
    const stray = readPidFile(files.pidFile);
    if (stray && isSameProcess(stray, null, files.pidFile)) {
      throw new CorralError('conflict', `a QEMU (pid ${stray}) is still running for "${cur.name}"`);
    }
    checkBootFiles(cur.config);
    for (const disk of cur.config.disks) {
      if (!fs.existsSync(disk.path)) throw new CorralError('failed', `disk ${disk.path} is missing`);
    }
    const admission = admit(
      cur.name,
      bootMemoryMiB(cur.config) * MiB,
      this.committedBytes(),
      readHostMemory().totalBytes,
      this.d.overcommit?.() ?? 1,
    );
    if (!admission.ok) {
      this.log(cur, 'error', null, null, null, `Not started: ${admission.message}`);
      throw new CorralError('conflict', admission.message!);
    }
    if (admission.message) {
      this.log(cur, 'host', null, null, null, `Warning: ${admission.message}`);
      this.notify(cur, 'warning', 'Host memory almost fully committed', admission.message);
    }
    this.transition(cur, 'starting', null, automatic ? `Restarting automatically (restart ${cur.restarts + 1})` : 'Starting');
    let proc: QemuProcess | null = null;
    try {
      const argv = buildArgv({ id: cur.id, name: cur.name, config: cur.config, files }, this.d.caps);
      proc = await launchQemu(this.d.caps.binary, argv, files);
      const rt = this.adopt(cur.id, files, proc);
      this.d.vms.setRuntime(
        cur.id,
        { pid: proc.pid, pidStart: proc.pidStart, startedAt: this.now(), ...(automatic ? { restarts: cur.restarts + 1 } : {}) },
        this.now(),
      );
      await this.connectSerial(rt);
      await this.applyAtBoot(rt, cur);
      await proc.qmp.execute('cont');
      this.reachedRunning(rt, `Running (pid ${proc.pid})`);
      return this.get(cur.id);
    } catch (err) {
      const msg = (err as Error).message;
      if (proc && !proc.qmp.closed) {
        const rt = this.runtimes.get(cur.id);
        if (rt) rt.requested = 'kill';
        proc.child?.kill('SIGKILL');
        await rt?.ended;
      }
      const now = this.record(cur.id);
      if (now.state === 'starting') this.transition(now, 'stopped', null, `Start failed: ${msg}`);
      this.log(now, 'error', null, null, null, `Start failed: ${msg}`);
      if (automatic) this.notify(now, 'error', `${now.name} could not be restarted`, msg);
      throw new CorralError('failed', `could not start "${cur.name}": ${msg}`);
    }
  }

  /** Resource settings QEMU's argv does not carry, applied while the guest is held at -S. */
  private async applyAtBoot(rt: Runtime, rec: VmRecord): Promise<void> {
    const c = rec.config;
    if (c.memoryMiB < bootMemoryMiB(c)) await setBalloon(rt.proc.qmp, c.memoryMiB);
    if ((c.ioBps || c.ioIops) && c.disks.length) await throttle(rt.proc.qmp, c);
    if (c.cpuWeight !== null || c.cpuCapPercent !== null) {
      if (this.d.cgroups?.status.available) this.d.cgroups.place(rec.id, rt.proc.pid, c.cpuWeight, c.cpuCapPercent);
      else this.log(rec, 'host', null, null, null, `CPU weight/cap not applied: ${this.d.cgroups?.status.reason ?? 'cgroups unavailable'}`);
    }
    this.d.vms.setRuntime(rec.id, { applied: c }, this.now());
  }

  /** Memory that running VMs may use: what each QEMU booted with. */
  committedBytes(): number {
    let sum = 0;
    for (const id of this.runtimes.keys()) {
      const r = this.d.vms.get(id);
      if (r) sum += bootMemoryMiB(r.applied ?? r.config) * MiB;
    }
    return sum;
  }

  /** The QEMUs being watched, for the statistics sampler. */
  running(): Array<{ vmId: string; pid: number; qmp: Runtime['proc']['qmp'] }> {
    return [...this.runtimes.values()].map((rt) => ({ vmId: rt.vmId, pid: rt.proc.pid, qmp: rt.proc.qmp }));
  }

  private reachedRunning(rt: Runtime, message: string): void {
    const rec = this.record(rt.vmId);
    this.d.vms.setRuntime(rec.id, { policyState: policy.onRunning(policyState(rec), this.now()), restartAt: null }, this.now());
    this.transition(rec, 'running', null, message);
    this.watchHealth(rt, rec.config);
  }

  /** ACPI power button; forced off if the guest has not shut down after timeoutSec. */
  async stop(ref: string, timeoutSec: number): Promise<VmInfo> {
    const rec = this.record(ref);
    const rt = await this.locked(rec.id, async () => {
      const cur = this.record(rec.id);
      if (this.stopPending(cur)) return null;
      const rt = this.runtimes.get(cur.id);
      if (!rt || !isLive(cur.state)) throw new CorralError('conflict', `"${cur.name}" is not running`);
      if (cur.state === 'stopping') return rt;
      rt.requested = 'stop';
      this.transition(
        cur,
        'stopping',
        null,
        timeoutSec > 0 ? `Stopping (ACPI power button, forced off after ${timeoutSec} s)` : 'Stopping (forced)',
      );
      if (timeoutSec > 0) {
        try {
          if (cur.state === 'paused') await rt.proc.qmp.execute('cont'); // a paused guest cannot see the button
          await rt.proc.qmp.execute('system_powerdown');
        } catch {
          // QMP gone: the exit handler finishes the job; force below covers a hung QEMU
        }
      }
      return rt;
    });
    if (!rt) return this.get(rec.id);
    const timer = setTimeout(() => {
      rt.forced = true;
      void this.forceOff(rt);
    }, timeoutSec * 1000);
    try {
      await rt.ended;
    } finally {
      clearTimeout(timer);
    }
    return this.get(rec.id);
  }

  async kill(ref: string): Promise<VmInfo> {
    const rec = this.record(ref);
    const pending = await this.locked(rec.id, () => this.stopPending(this.record(rec.id)));
    if (pending) return this.get(rec.id);
    const rt = this.runtimes.get(rec.id);
    const cur = this.record(rec.id);
    if (!rt || !isLive(cur.state)) throw new CorralError('conflict', `"${rec.name}" is not running`);
    if (rt.requested !== 'stop') rt.requested = 'kill';
    await this.forceOff(rt);
    await rt.ended;
    return this.get(rec.id);
  }

  /** A user stop or kill of a VM waiting to restart, or stuck in crash-loop: it wins, and it stays stopped. */
  private stopPending(cur: VmRecord): boolean {
    if (cur.state !== 'restarting' && cur.state !== 'crash-loop') return false;
    this.cancelRestart(
      cur,
      'stopped',
      cur.state === 'restarting' ? 'Pending restart cancelled by the user' : 'Stopped by the user (was in crash-loop)',
    );
    return true;
  }

  reset(ref: string): Promise<VmInfo> {
    return this.qmpOp(ref, ['running', 'paused'], 'system_reset', null, 'Reset');
  }

  pause(ref: string): Promise<VmInfo> {
    return this.qmpOp(ref, ['running'], 'stop', 'paused', 'Paused');
  }

  resume(ref: string): Promise<VmInfo> {
    return this.qmpOp(ref, ['paused'], 'cont', 'running', 'Resumed');
  }

  private qmpOp(ref: string, from: VmState[], command: string, to: VmState | null, message: string): Promise<VmInfo> {
    const rec = this.record(ref);
    return this.locked(rec.id, async () => {
      const cur = this.record(rec.id);
      const rt = this.runtimes.get(cur.id);
      if (!rt || !from.includes(cur.state)) {
        throw new CorralError('conflict', `"${cur.name}" is ${cur.state}: ${message.toLowerCase()} needs it ${from.join(' or ')}`);
      }
      await rt.proc.qmp.execute(command);
      if (to) this.transition(this.record(cur.id), to, null, message);
      else this.log(cur, 'state', cur.state, cur.state, null, message);
      return this.get(cur.id);
    });
  }

  /** SIGTERM lets QEMU flush and exit; SIGKILL if it does not within 3 s. */
  private async forceOff(rt: Runtime): Promise<void> {
    if (!this.runtimes.has(rt.vmId)) return;
    signal(rt.proc.pid, 'SIGTERM');
    const timer = setTimeout(() => signal(rt.proc.pid, 'SIGKILL'), 3000);
    await rt.ended;
    clearTimeout(timer);
  }

  // ---- watching a QEMU ------------------------------------------------------------------

  private adopt(vmId: string, files: VmFiles, proc: QemuProcess): Runtime {
    const rt = new Runtime(vmId, files, proc);
    this.runtimes.set(vmId, rt);
    proc.qmp.on('event', (ev) => this.onQmpEvent(rt, ev));
    rt.ended = proc.exited.then((facts) => this.onExit(rt, facts));
    return rt;
  }

  private async connectSerial(rt: Runtime): Promise<void> {
    const link = new SerialLink(rt.files.serialSocket);
    await link.connect();
    // Until QEMU has accepted the link, output goes to the log only. Once it has, the log's
    // size says where the stream starts: exact when the guest is not running yet, as at a
    // start; a byte or two off at a reattach to a guest printing at that very moment.
    await waitUntil(
      async () => {
        const devs = await rt.proc.qmp.execute<Array<{ label: string; filename: string }>>('query-chardev');
        return !devs.find((d) => d.label === 'serial0')?.filename.startsWith('disconnected:');
      },
      5000,
      'QEMU did not accept the serial console link',
    );
    link.begin(logSize(rt.files.serialLog));
    rt.serial = link;
    link.subscribe((data, offset) => this.emit('serialData', rt.vmId, data, offset));
    link.onClose(() => this.emit('serialClosed', rt.vmId));
  }

  private watchHealth(rt: Runtime, config: VmConfig): void {
    rt.health?.stop();
    let probe = null;
    if (config.liveness) {
      try {
        probe = makeProbe(config.liveness, config.forwards, rt.files.qgaSocket, this.health.livenessTimeoutMs);
      } catch (err) {
        this.log(this.record(rt.vmId), 'error', null, null, null, `Liveness probe off: ${(err as Error).message}`);
      }
    }
    rt.health = new HealthWatch(
      rt.proc.qmp,
      probe,
      this.health,
      (kind, why) => this.onHung(rt, kind, why),
      () => this.d.vms.get(rt.vmId)?.state === 'paused',
    );
    rt.health.start();
  }

  /** A hung QEMU or guest cannot be asked to stop: it is killed and handled as a crash. */
  private onHung(rt: Runtime, kind: 'qemu-hung' | 'guest-hung', why: string): void {
    if (this.runtimes.get(rt.vmId) !== rt || rt.requested) return;
    rt.hung = kind;
    rt.hungWhy = why;
    signal(rt.proc.pid, 'SIGKILL');
  }

  private onQmpEvent(rt: Runtime, ev: QmpEvent): void {
    rt.recentEvents.push(ev);
    if (rt.recentEvents.length > 20) rt.recentEvents.shift();
    switch (ev.event) {
      case 'SHUTDOWN':
        rt.shutdown = { guest: Boolean(ev.data?.guest), reason: String(ev.data?.reason ?? '') };
        break;
      case 'GUEST_PANICKED':
        rt.panicked = true;
        break;
      case 'WATCHDOG': {
        const rec = this.d.vms.get(rt.vmId);
        if (!rec) break;
        if (rec.config.guestWatchdog === 'restart' && !rt.requested) {
          // QEMU paused the guest; ending it now hands the decision to the restart policy
          rt.watchdog = true;
          signal(rt.proc.pid, 'SIGKILL');
        } else if (rec.config.guestWatchdog === 'poweroff') {
          rt.watchdog = true;
        } else {
          this.log(
            rec,
            'state',
            rec.state,
            rec.state,
            'guest-watchdog',
            `The guest's watchdog fired (QEMU action: ${String(ev.data?.action ?? rec.config.guestWatchdog)})`,
          );
        }
        break;
      }
      case 'STOP':
      case 'RESUME': {
        // keep the state true when QEMU pauses by itself (I/O error, watchdog "pause") or is resumed
        const rec = this.d.vms.get(rt.vmId);
        const to: VmState = ev.event === 'STOP' ? 'paused' : 'running';
        if (
          rec &&
          (rec.state === 'running' || rec.state === 'paused') &&
          rec.state !== to &&
          !rt.shutdown &&
          !rt.watchdog &&
          !rt.panicked
        ) {
          this.transition(rec, to, null, ev.event === 'STOP' ? 'Paused by QEMU' : 'Resumed');
        }
        break;
      }
    }
  }

  private onExit(rt: Runtime, facts: ExitFacts): void {
    if (this.runtimes.get(rt.vmId) !== rt) return;
    this.runtimes.delete(rt.vmId);
    rt.health?.stop();
    rt.proc.qmp.close();
    rt.serial?.close();
    cleanRunDir(rt.files);
    const rec = this.d.vms.get(rt.vmId);
    if (!rec) return;
    if (this.closing && rt.requested === null) return; // host going away: not our business any more
    const reason = classifyEnd({
      ...facts,
      requested: rt.requested,
      shutdown: rt.shutdown,
      panicked: rt.panicked,
      watchdog: rt.watchdog,
      hung: rt.hung,
    });
    let note = '';
    if (reason === 'user-stop')
      note = rt.forced ? ': forced off, the guest ignored the power button' : rt.shutdown?.guest ? ': the guest shut down cleanly' : '';
    if (rt.hung) note = ` (${rt.hungWhy})`;
    const report = isCleanEnd(reason)
      ? null
      : crashReport({
          reason,
          code: facts.code,
          signal: facts.signal,
          events: rt.recentEvents,
          serialLog: rt.files.serialLog,
          qemuLog: rt.files.qemuLog,
          qemuLogStart: rt.proc.logStart,
        });
    this.finish(rec, reason, facts.code, facts.signal, note, report);
  }

  /** Records the end of a run, then lets the restart policy decide what comes next. */
  private finish(
    rec: VmRecord,
    reason: ExitReason,
    code: number | null,
    signalName: string | null,
    note = '',
    report: CrashReport | null = null,
  ): void {
    const now = this.now();
    const lastExit: ExitInfo = { code, signal: signalName, reason, at: now };
    const to: VmState = isCleanEnd(reason) ? 'stopped' : 'crashed';
    this.d.vms.setRuntime(rec.id, { pid: null, pidStart: null, lastExit, applied: null, startedAt: null }, now);
    this.d.cgroups?.remove(rec.id);
    this.transition(this.record(rec.id), to, reason, describeEnd(reason, code, signalName) + note, report);
    this.applyPolicy(this.record(rec.id), reason);
  }

  private applyPolicy(rec: VmRecord, reason: ExitReason): void {
    const c = rec.config;
    const step = policy.onEnd(
      policyState(rec),
      { policy: c.restart, maxCrashes: c.maxCrashes, windowMs: c.crashWindowSec * 1000 },
      reason,
      this.now(),
      this.random,
    );
    this.d.vms.setRuntime(rec.id, { policyState: step.state }, this.now());
    const d = step.decision;
    const crashed = !isCleanEnd(reason);
    if (d.action === 'restart') {
      this.scheduleRestart(
        this.record(rec.id),
        d.at,
        `Restart ${d.delayMs ? `in ${formatDelay(d.delayMs)}` : 'now'} (policy ${c.restart}, attempt ${d.attempt})`,
      );
      if (crashed) this.notify(rec, 'warning', `${rec.name} crashed and is restarting`, describeEnd(reason, null, null));
    } else if (d.action === 'crash-loop') {
      const msg = `${d.crashes} crashes within ${formatDelay(d.windowMs)}: no more automatic restarts until you start it`;
      this.transition(this.record(rec.id), 'crash-loop', reason, `Crash loop: ${msg}`);
      this.notify(rec, 'error', `${rec.name} is crash-looping`, msg);
    } else if (crashed) {
      this.notify(rec, 'error', `${rec.name} crashed`, `${describeEnd(reason, null, null)} (restart policy: ${c.restart})`);
    }
  }

  private scheduleRestart(rec: VmRecord, at: number, message: string): void {
    this.clearRestartTimer(rec.id);
    this.d.vms.setRuntime(rec.id, { restartAt: at }, this.now());
    if (rec.state === 'restarting') this.log(rec, 'state', rec.state, rec.state, null, message);
    else this.transition(rec, 'restarting', null, message);
    const fire = () => {
      this.restartTimers.delete(rec.id);
      void this.locked(rec.id, async () => {
        const cur = this.d.vms.get(rec.id);
        if (!cur || cur.state !== 'restarting' || this.closing) return;
        const t = policy.onTimer(policyState(cur), this.now());
        this.d.vms.setRuntime(cur.id, { policyState: t.state }, this.now());
        if (!t.start) return;
        try {
          await this.launch(this.record(cur.id), true);
        } catch {
          // logged and notified by launch; the VM stays stopped
        }
      });
    };
    const delay = Math.max(0, at - this.now());
    if (delay === 0) queueMicrotask(fire);
    else this.restartTimers.set(rec.id, setTimeout(fire, delay));
  }

  private cancelRestart(rec: VmRecord, to: 'stopped', message: string): void {
    this.clearRestartTimer(rec.id);
    this.d.vms.setRuntime(rec.id, { policyState: policy.onUserStop(policyState(rec)), restartAt: null }, this.now());
    this.transition(rec, to, null, message);
  }

  private clearRestartTimer(id: string): void {
    const t = this.restartTimers.get(id);
    if (t) clearTimeout(t);
    this.restartTimers.delete(id);
  }

  // ---- host start / stop ----------------------------------------------------------------

  /** Reattaches to every guest a previous host left running; settles the ones that died meanwhile. */
  async reattachAll(): Promise<void> {
    const all = this.d.vms.list();
    await Promise.all(all.filter((r) => isLive(r.state)).map((r) => this.locked(r.id, () => this.reattach(r))));
    for (const r of all) {
      if (!isLive(r.state)) cleanRunDir(this.filesOf(r.id)); // stale sockets and pidfiles
      if (r.state === 'restarting') {
        const d = policy.onHostStart(policyState(r), this.now());
        if (d.action === 'restart') this.resumeRestart(r, d.at);
        else this.transition(r, 'crashed', null, `Pending restart dropped: ${d.action === 'none' ? d.why : d.action}`);
      }
    }
  }

  /** A restart that was pending when the last host went away: due now, or at its original time. */
  private resumeRestart(rec: VmRecord, at: number): void {
    const when = at <= this.now() ? 'due now' : `in ${formatDelay(at - this.now())}`;
    this.scheduleRestart(rec, at, `Resuming the restart that was pending when Corral stopped (${when})`);
  }

  private async reattach(rec: VmRecord): Promise<void> {
    const files = this.filesOf(rec.id);
    const pid = rec.pid ?? readPidFile(files.pidFile);
    if (pid && isSameProcess(pid, rec.pidStart, files.pidFile)) {
      try {
        const proc = await attachQemu(pid, rec.pidStart, files);
        const rt = this.adopt(rec.id, files, proc);
        const status = await proc.qmp.execute<{ status: string; running: boolean }>('query-status');
        if (status.status === 'prelaunch') await proc.qmp.execute('cont'); // the last host died mid-start
        await this.connectSerial(rt);
        if (rec.state === 'stopping') rt.requested = 'stop';
        if (status.status === 'paused') {
          if (rec.state !== 'paused') this.transition(rec, 'paused', null, `Reattached (pid ${pid}), paused`);
          else this.log(rec, 'host', rec.state, rec.state, null, `Reattached (pid ${pid})`);
          this.watchHealth(rt, rec.config);
        } else if (rec.state === 'running' || rec.state === 'stopping') {
          this.log(rec, 'host', rec.state, rec.state, null, `Reattached (pid ${pid})`);
          this.watchHealth(rt, rec.config);
        } else this.reachedRunning(rt, `Reattached (pid ${pid})`);
        this.emitChanged(rec.id);
        return;
      } catch (err) {
        // alive but not answering: it cannot be supervised, so it is ended as hung
        this.runtimes.delete(rec.id);
        signal(pid, 'SIGKILL');
        cleanRunDir(files);
        this.finish(rec, 'qemu-hung', null, 'SIGKILL', ` (did not answer QMP after a host restart: ${(err as Error).message})`);
        return;
      }
    }
    cleanRunDir(files);
    const report = crashReport({
      reason: 'qemu-exited',
      code: null,
      signal: null,
      events: [],
      serialLog: files.serialLog,
      qemuLog: files.qemuLog,
      qemuLogStart: 0,
    });
    if (rec.state === 'stopping') this.finish(rec, 'user-stop', null, null, ' while Corral was not running');
    else this.finish(rec, 'qemu-exited', null, null, ' while Corral was not running', report);
  }

  /** Detaches from all guests and leaves them running (the default when a host quits). */
  detachAll(): void {
    this.closing = true;
    for (const t of this.restartTimers.values()) clearTimeout(t);
    this.restartTimers.clear();
    for (const rt of this.runtimes.values()) {
      rt.health?.stop();
      rt.proc.detach();
      rt.serial?.close();
    }
    this.runtimes.clear();
  }

  /** Stops every running guest (ACPI, forced after timeoutSec), e.g. when the user quits with "shut down VMs". */
  async stopAll(timeoutSec: number): Promise<void> {
    await Promise.all(
      [...this.runtimes.values()].map(async (rt) => {
        rt.requested = 'host-shutdown';
        try {
          await rt.proc.qmp.execute('system_powerdown');
        } catch {
          // forced below
        }
        const t = setTimeout(() => void this.forceOff(rt), timeoutSec * 1000);
        await rt.ended;
        clearTimeout(t);
      }),
    );
  }

  runningCount(): number {
    return this.runtimes.size;
  }

  // ---- helpers --------------------------------------------------------------------------

  private transition(rec: VmRecord, to: VmState, reason: string | null, message: string, report: CrashReport | null = null): void {
    if (rec.state !== to && !canTransition(rec.state, to)) {
      throw new Error(`internal: ${rec.name} cannot go from ${rec.state} to ${to}`);
    }
    this.d.vms.setRuntime(rec.id, { state: to }, this.now());
    this.log(rec, 'state', rec.state, to, reason, message, report);
    this.emitChanged(rec.id);
  }

  private log(
    rec: { id: string; name: string },
    kind: EventRecord['kind'],
    from: string | null,
    to: string | null,
    reason: string | null,
    message: string,
    report: CrashReport | null = null,
  ): void {
    const ev = this.d.events.add({ vmId: rec.id, vmName: rec.name, at: this.now(), kind, from, to, reason, message, report });
    this.emit('logged', ev);
  }

  private notify(rec: { id: string; name: string }, level: Notification['level'], title: string, body: string): void {
    this.emit('notify', { vmId: rec.id, vmName: rec.name, level, title, body });
  }

  private emitChanged(id: string): void {
    const rec = this.d.vms.get(id);
    if (rec) this.emit('changed', this.info(rec));
  }

  /** Runs fn after every earlier operation on this VM has settled. */
  private locked<T>(id: string, fn: () => T | Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.locks.set(id, settled);
    void settled.then(() => {
      if (this.locks.get(id) === settled) this.locks.delete(id);
    });
    return next;
  }

  /** Waits (polling the store) until a VM reaches one of `states`. For tests and benchmarks. */
  async waitState(ref: string, states: VmState[], timeoutMs: number, since = 0): Promise<VmInfo> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = this.get(ref);
      if (states.includes(info.state) && info.stateSince >= since) return info;
      if (Date.now() > deadline) throw new Error(`${info.name} is ${info.state}, not ${states.join('/')}, after ${timeoutMs} ms`);
      await sleep(5);
    }
  }
}

/** Cross-field rules the schema cannot express. */
function checkResources(c: VmConfig): void {
  if (c.maxCpus !== null && c.maxCpus < c.cpus)
    throw new CorralError('invalid-argument', `invalid argument "maxCpus": must be at least cpus (${c.cpus})`, 'maxCpus');
  if (c.maxMemoryMiB !== null && c.maxMemoryMiB < c.memoryMiB) {
    throw new CorralError(
      'invalid-argument',
      `invalid argument "maxMemoryMiB": must be at least memoryMiB (${c.memoryMiB})`,
      'maxMemoryMiB',
    );
  }
}

function policyState(rec: VmRecord): policy.PolicyState {
  const s = rec.policyState as Partial<policy.PolicyState> | null;
  return s && Array.isArray(s.crashTimes) ? { ...policy.INITIAL_STATE, ...s } : { ...policy.INITIAL_STATE };
}

function formatDelay(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${Math.round(ms / 100) / 10} s`;
  return `${Math.round(ms / 60_000)} min`;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Polls `ok` (every few ms) until it holds; fails with `why` after `timeoutMs`. */
async function waitUntil(ok: () => Promise<boolean>, timeoutMs: number, why: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(why);
    await sleep(2);
  }
}
