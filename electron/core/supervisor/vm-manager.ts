// Owns every VM's lifecycle: create/edit/delete, start/stop/kill/reset/pause/resume, the
// running QEMU processes, and the reattachment to guests a previous host left running.
// Operations on one VM are serialized, so two simultaneous starts never yield two QEMUs.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Args, EventRecord, ExitInfo, ExitReason, VmConfig, VmInfo, VmState } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { SerialLink } from '../consoles/serial.js';
import { ensurePrivateDir, vmFiles, type DataLayout, type VmFiles } from '../paths.js';
import { buildArgv } from '../qemu/argv.js';
import { checkImage, createQcow2, detectFormat } from '../qemu/img.js';
import { attachQemu, cleanRunDir, launchQemu, type ExitFacts, type QemuProcess } from '../qemu/launcher.js';
import { isSameProcess, readPidFile } from '../qemu/proc.js';
import type { QemuCaps } from '../qemu/probe.js';
import type { QmpEvent } from '../qemu/qmp.js';
import type { EventRepo } from '../store/event-repo.js';
import { publicInfo, type VmRecord, type VmRepo } from '../store/vm-repo.js';
import { canTransition, classifyEnd, describeEnd, isCleanEnd, isLive, type Requested } from './state.js';

export interface ManagerDeps {
  layout: DataLayout;
  vms: VmRepo;
  events: EventRepo;
  caps: QemuCaps;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

export interface ManagerEvents {
  changed: [VmInfo];
  removed: [{ id: string; name: string }];
  logged: [EventRecord];
  serialData: [string, Buffer];
  serialClosed: [string];
}

/** A QEMU this host is watching. */
class Runtime {
  requested: Requested = null;
  shutdown: { guest: boolean; reason: string } | null = null;
  panicked = false;
  watchdog = false;
  hung: 'qemu-hung' | 'guest-hung' | null = null;
  /** A stop that had to be forced because the guest ignored the power button. */
  forced = false;
  /** Recent QMP events, kept for crash reports. */
  recentEvents: QmpEvent[] = [];
  serial: SerialLink | null = null;
  ended: Promise<void> = Promise.resolve();

  constructor(
    readonly vmId: string,
    readonly files: VmFiles,
    readonly proc: QemuProcess,
  ) {}
}

export class VmManager extends EventEmitter<ManagerEvents> {
  private readonly runtimes = new Map<string, Runtime>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly now: () => number;
  private readonly env: NodeJS.ProcessEnv;
  private closing = false;

  constructor(private readonly d: ManagerDeps) {
    super();
    this.now = d.now ?? Date.now;
    this.env = d.env ?? process.env;
  }

  // ---- queries --------------------------------------------------------------------------

  list(): VmInfo[] {
    return this.d.vms.list().map(publicInfo);
  }

  get(ref: string): VmInfo {
    return publicInfo(this.record(ref));
  }

  private record(ref: string): VmRecord {
    const rec = this.d.vms.find(ref);
    if (!rec) throw new CorralError('not-found', `no VM named "${ref}"`, 'vm');
    return rec;
  }

  filesOf(vmId: string): VmFiles {
    return vmFiles(this.d.layout, vmId);
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
        disks.push(await this.existingImage(a.disk.image, a.disk.format));
      }
      const config: VmConfig = {
        cpus: a.cpus,
        memoryMiB: a.memoryMiB,
        disks,
        iso: a.iso,
        kernel: a.kernel,
        initrd: a.initrd,
        append: a.append,
        forwards: a.forwards,
        restart: a.restart,
      };
      checkForwards(config);
      const rec = this.d.vms.insert(id, a.name, config, this.now());
      this.log(rec, 'created', null, null, null, `Created "${a.name}"`);
      this.emitChanged(rec.id);
      return publicInfo(rec);
    } catch (err) {
      fs.rmSync(files.dir, { recursive: true, force: true });
      throw err;
    }
  }

  private async existingImage(image: string, format: 'qcow2' | 'raw' | undefined): Promise<VmConfig['disks'][number]> {
    let real: string;
    try {
      real = fs.realpathSync(image);
      fs.accessSync(real, fs.constants.R_OK | fs.constants.W_OK);
    } catch (err) {
      throw new CorralError('invalid-argument', `disk image ${image}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not readable and writable'}`, 'disk.image');
    }
    let fmt: 'qcow2' | 'raw';
    try {
      fmt = format ?? detectFormat(real);
      await checkImage(real, fmt, this.env);
    } catch (err) {
      throw new CorralError('invalid-argument', (err as Error).message, 'disk.image');
    }
    for (const other of this.d.vms.list()) {
      if (other.config.disks.some((d) => d.path === real)) {
        throw new CorralError('conflict', `${real} is already a disk of "${other.name}"`, 'disk.image');
      }
    }
    return { path: real, format: fmt, owned: false };
  }

  update(a: Args<'vm.update'>): Promise<VmInfo> {
    const rec = this.record(a.vm);
    return this.locked(rec.id, () => {
      const cur = this.record(rec.id);
      if (cur.state !== 'stopped' && cur.state !== 'crashed') {
        throw new CorralError('conflict', `"${cur.name}" is ${cur.state}: stop it before editing its settings`);
      }
      const name = a.name ?? cur.name;
      if (a.name !== undefined && this.d.vms.nameTaken(a.name, cur.id)) throw new CorralError('conflict', `a VM named "${a.name}" already exists`, 'name');
      const next: VmConfig = { ...cur.config };
      for (const key of ['cpus', 'memoryMiB', 'iso', 'kernel', 'initrd', 'append', 'forwards', 'restart'] as const) {
        if (a[key] !== undefined) (next as Record<string, unknown>)[key] = a[key];
      }
      checkBootFiles(next);
      checkForwards(next, cur.id);
      const changed = Object.keys(a).filter((k) => k !== 'vm');
      const saved = this.d.vms.updateConfig(cur.id, name, next, this.now());
      this.log(saved, 'updated', null, null, null, `Settings changed: ${changed.join(', ') || 'nothing'}`);
      this.emitChanged(saved.id);
      return publicInfo(saved);
    });
  }

  async delete(ref: string, keepDisks: boolean): Promise<void> {
    const rec = this.record(ref);
    await this.locked(rec.id, () => {
      const cur = this.record(rec.id);
      if (isLive(cur.state)) throw new CorralError('conflict', `"${cur.name}" is ${cur.state}: stop it before deleting it`);
      const files = this.filesOf(cur.id);
      this.d.vms.delete(cur.id);
      for (const disk of cur.config.disks) {
        if (disk.owned && !keepDisks) fs.rmSync(disk.path, { force: true });
      }
      fs.rmSync(files.runDir, { recursive: true, force: true });
      fs.rmSync(files.serialLog, { force: true });
      fs.rmSync(files.qemuLog, { force: true });
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

  start(ref: string): Promise<VmInfo> {
    const rec = this.record(ref);
    return this.locked(rec.id, async () => {
      const cur = this.record(rec.id);
      if (isLive(cur.state)) throw new CorralError('conflict', `"${cur.name}" is already ${cur.state}`);
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
      this.transition(cur, 'starting', null, 'Starting');
      let proc: QemuProcess | null = null;
      try {
        const argv = buildArgv({ id: cur.id, name: cur.name, config: cur.config, files }, this.d.caps);
        proc = await launchQemu(this.d.caps.binary, argv, files);
        const rt = this.adopt(cur.id, files, proc);
        this.d.vms.setRuntime(cur.id, { pid: proc.pid, pidStart: proc.pidStart }, this.now());
        await this.connectSerial(rt);
        await proc.qmp.execute('cont');
        this.transition(this.record(cur.id), 'running', null, `Running (pid ${proc.pid})`);
        return this.get(cur.id);
      } catch (err) {
        const msg = (err as Error).message;
        if (proc && !proc.qmp.closed) {
          this.runtimes.get(cur.id)!.requested = 'kill';
          proc.child?.kill('SIGKILL');
          await this.runtimes.get(cur.id)?.ended;
        }
        const now = this.record(cur.id);
        if (now.state === 'starting') this.transition(now, 'stopped', null, `Start failed: ${msg}`);
        this.log(now, 'error', null, null, null, `Start failed: ${msg}`);
        throw new CorralError('failed', `could not start "${cur.name}": ${msg}`);
      }
    });
  }

  /** ACPI power button; forced off if the guest has not shut down after timeoutSec. */
  async stop(ref: string, timeoutSec: number): Promise<VmInfo> {
    const rec = this.record(ref);
    const rt = await this.locked(rec.id, async () => {
      const cur = this.record(rec.id);
      const rt = this.runtimes.get(cur.id);
      if (!rt || !isLive(cur.state)) throw new CorralError('conflict', `"${cur.name}" is not running`);
      if (cur.state === 'stopping') return rt;
      rt.requested = 'stop';
      this.transition(cur, 'stopping', null, timeoutSec > 0 ? `Stopping (ACPI power button, forced off after ${timeoutSec} s)` : 'Stopping (forced)');
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
    const rt = this.runtimes.get(rec.id);
    if (!rt || !isLive(rec.state)) throw new CorralError('conflict', `"${rec.name}" is not running`);
    if (rt.requested !== 'stop') rt.requested = 'kill';
    await this.forceOff(rt);
    await rt.ended;
    return this.get(rec.id);
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
    rt.serial = link;
    link.subscribe((data) => this.emit('serialData', rt.vmId, data));
    link.onClose(() => this.emit('serialClosed', rt.vmId));
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
      case 'WATCHDOG':
        rt.watchdog = true;
        break;
      case 'STOP':
      case 'RESUME': {
        // keep the state true when QEMU pauses by itself (e.g. an I/O error) or is resumed
        const rec = this.d.vms.get(rt.vmId);
        const to: VmState = ev.event === 'STOP' ? 'paused' : 'running';
        if (rec && (rec.state === 'running' || rec.state === 'paused') && rec.state !== to && !rt.shutdown) {
          this.transition(rec, to, null, ev.event === 'STOP' ? 'Paused by QEMU' : 'Resumed');
        }
        break;
      }
    }
  }

  private onExit(rt: Runtime, facts: ExitFacts): void {
    if (this.runtimes.get(rt.vmId) !== rt) return;
    this.runtimes.delete(rt.vmId);
    rt.proc.qmp.close();
    rt.serial?.close();
    cleanRunDir(rt.files);
    const rec = this.d.vms.get(rt.vmId);
    if (!rec) return;
    if (this.closing && rt.requested === null) return; // host going away: not our business any more
    const reason = classifyEnd({ ...facts, requested: rt.requested, shutdown: rt.shutdown, panicked: rt.panicked, watchdog: rt.watchdog, hung: rt.hung });
    let note = '';
    if (reason === 'user-stop') note = rt.forced ? ': forced off, the guest ignored the power button' : rt.shutdown?.guest ? ': the guest shut down cleanly' : '';
    this.finish(rec, reason, facts.code, facts.signal, note);
  }

  private finish(rec: VmRecord, reason: ExitReason, code: number | null, signalName: string | null, note = ''): void {
    const lastExit: ExitInfo = { code, signal: signalName, reason, at: this.now() };
    const to: VmState = isCleanEnd(reason) ? 'stopped' : 'crashed';
    this.d.vms.setRuntime(rec.id, { pid: null, pidStart: null, lastExit }, this.now());
    this.transition(this.record(rec.id), to, reason, describeEnd(reason, code, signalName) + note);
  }

  // ---- host start / stop ----------------------------------------------------------------

  /** Reattaches to every guest a previous host left running; settles the ones that died meanwhile. */
  async reattachAll(): Promise<void> {
    const live = this.d.vms.list().filter((r) => isLive(r.state));
    await Promise.all(live.map((r) => this.locked(r.id, () => this.reattach(r))));
    // stale run dirs of VMs that are not running
    for (const r of this.d.vms.list()) {
      if (!isLive(r.state)) cleanRunDir(this.filesOf(r.id));
    }
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
        const state: VmState = status.status === 'paused' ? 'paused' : 'running';
        if (rec.state === 'stopping') rt.requested = 'stop';
        if (rec.state !== state && rec.state !== 'stopping') this.transition(rec, state, null, `Reattached (pid ${pid})`);
        else this.log(rec, 'host', rec.state, rec.state, null, `Reattached (pid ${pid})`);
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
    this.finish(rec, rec.state === 'stopping' ? 'user-stop' : 'qemu-exited', null, null, ' while Corral was not running');
  }

  /** Detaches from all guests and leaves them running (the default when a host quits). */
  detachAll(): void {
    this.closing = true;
    for (const rt of this.runtimes.values()) {
      rt.proc.qmp.close();
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

  private transition(rec: VmRecord, to: VmState, reason: string | null, message: string): void {
    if (rec.state !== to && !canTransition(rec.state, to)) {
      throw new Error(`internal: ${rec.name} cannot go from ${rec.state} to ${to}`);
    }
    this.d.vms.setRuntime(rec.id, { state: to }, this.now());
    this.log(rec, 'state', rec.state, to, reason, message);
    this.emitChanged(rec.id);
  }

  private log(rec: { id: string; name: string }, kind: EventRecord['kind'], from: string | null, to: string | null, reason: string | null, message: string): void {
    const ev = this.d.events.add({ vmId: rec.id, vmName: rec.name, at: this.now(), kind, from, to, reason, message });
    this.emit('logged', ev);
  }

  private emitChanged(id: string): void {
    const rec = this.d.vms.get(id);
    if (rec) this.emit('changed', publicInfo(rec));
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

  /** For tests and benchmarks: wait until the VM's current QEMU is gone. */
  async waitEnded(ref: string): Promise<void> {
    const rt = this.runtimes.get(this.record(ref).id);
    await rt?.ended;
  }

  /** Waits (polling the store) until a VM reaches one of `states`. */
  async waitState(ref: string, states: VmState[], timeoutMs: number): Promise<VmInfo> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = this.get(ref);
      if (states.includes(info.state)) return info;
      if (Date.now() > deadline) throw new Error(`${info.name} is ${info.state}, not ${states.join('/')}, after ${timeoutMs} ms`);
      await sleep(10);
    }
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function checkBootFiles(c: { iso: string | null; kernel: string | null; initrd: string | null; append: string | null }): void {
  for (const field of ['iso', 'kernel', 'initrd'] as const) {
    const p = c[field];
    if (!p) continue;
    try {
      const st = fs.statSync(p);
      if (!st.isFile()) throw new Error('not a file');
      fs.accessSync(p, fs.constants.R_OK);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message === 'not a file' ? 'not a file' : 'not readable';
      throw new CorralError('invalid-argument', `invalid argument "${field}": ${p}: ${why}`, field);
    }
  }
  if ((c.initrd || c.append) && !c.kernel) {
    throw new CorralError('invalid-argument', `invalid argument "${c.initrd ? 'initrd' : 'append'}": needs a kernel`, c.initrd ? 'initrd' : 'append');
  }
}

function checkForwards(c: VmConfig, _selfId?: string): void {
  const seen = new Set<string>();
  c.forwards.forEach((f, i) => {
    const key = `${f.proto}:${f.hostAddr}:${f.hostPort}`;
    if (seen.has(key)) throw new CorralError('invalid-argument', `invalid argument "forwards.${i}.hostPort": ${f.hostPort} is forwarded twice`, `forwards.${i}.hostPort`);
    seen.add(key);
  });
}
