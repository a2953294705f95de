// An in-memory QEMU behind the driver seam: processes with pids that outlive a host (so a
// host restart reattaches to them), a QMP that answers the commands Corral sends and emits
// the events real QEMU emits, and a guest the test makes crash, panic, hang or power off.
// Time is the fake clock's, so hang timeouts and ACPI shutdowns are deterministic.
import type { NicKind } from '../../electron/core/api/contract';
import type { Clock } from '../../electron/core/clock';
import { QemuCommands, type QmpLink } from '../../electron/core/qemu/commands';
import type { CrashLogs, ExitFacts, LaunchSpec, Machine, QemuDriver } from '../../electron/core/qemu/driver';
import { SERIAL_CHARDEV } from '../../electron/core/qemu/ids';
import { QmpError, type QmpEvent } from '../../electron/core/qemu/qmp';

export interface FakeQemuOptions {
  clock: Clock;
  /** Where the fake writes what its processes do (launches, exits), with the VM's id. */
  log: (line: string, vmId: string) => void;
  /** How long a guest takes to power off after the ACPI button. */
  acpiShutdownMs?: number;
}

export class FakeProcess {
  status: 'prelaunch' | 'running' | 'paused' = 'prelaunch';
  alive = true;
  /** QEMU's main loop is stuck: QMP does not answer and SIGTERM is not handled. */
  frozen = false;
  /** The guest ignores the ACPI power button. */
  ignoresAcpi = false;
  /** The guest's service answers the liveness probe. */
  serviceUp = false;
  /** Its swtpm, for a VM with a TPM (null: none); false once it ended. */
  swtpm: boolean | null = null;
  readonly handles = new Set<FakeMachine>();

  constructor(
    readonly pid: number,
    readonly vmId: string,
    readonly startTime: string,
    private readonly q: FakeQemu,
  ) {}

  emit(event: string, data?: Record<string, unknown>): void {
    const ev: QmpEvent = { event, ...(data ? { data } : {}) };
    for (const h of this.handles) h.deliver(ev);
  }

  exit(facts: ExitFacts): void {
    if (!this.alive) return;
    this.alive = false;
    this.q.log(`qemu: pid ${this.pid} exited (${facts.signal ? `signal ${facts.signal}` : `status ${facts.code}`})`, this.vmId);
    for (const h of this.handles) h.ended(facts);
  }

  // ---- what the guest does -----------------------------------------------------------------

  kill(signal: NodeJS.Signals): void {
    if (signal === 'SIGTERM') {
      if (this.frozen) return;
      // QEMU handles SIGTERM as a host-requested shutdown and exits cleanly
      this.emit('SHUTDOWN', { guest: false, reason: 'host-signal' });
      this.exit({ code: 0, signal: null });
    } else this.exit({ code: null, signal });
  }

  /** The VM's swtpm ends while QEMU runs on (QEMU itself takes no notice). */
  tpmDies(): void {
    if (!this.swtpm) throw new Error('this VM has no swtpm running');
    this.swtpm = false;
    this.q.log(`swtpm: of pid ${this.pid} ended`, this.vmId);
    for (const h of this.handles) h.tpmFailed('swtpm ended while QEMU ran');
  }

  /** A shared folder's virtiofsd ends while QEMU runs on. */
  shareDies(tag: string): void {
    this.q.log(`virtiofsd: ${tag} of pid ${this.pid} ended`, this.vmId);
    for (const h of this.handles) h.shareFailed(`virtiofsd of shared folder "${tag}" ended while QEMU ran`);
  }

  poweroff(): void {
    this.emit('SHUTDOWN', { guest: true, reason: 'guest-shutdown' });
    this.exit({ code: 0, signal: null });
  }

  /** -action panic=exit-failure: the panic event, then QEMU exits with a failure status. */
  panic(): void {
    this.emit('GUEST_PANICKED', { action: 'pause' });
    this.exit({ code: 1, signal: null });
  }

  /** The i6300esb fired; QEMU takes the configured action (pause, for Corral's "restart"). */
  watchdog(action: string): void {
    this.emit('WATCHDOG', { action });
    if (action === 'pause') {
      this.status = 'paused';
      this.emit('STOP');
    }
  }

  /** Answers a QMP command as QEMU 7.2 would (for what Corral sends). */
  command(name: string): unknown {
    switch (name) {
      case 'cont':
        this.status = 'running';
        this.emit('RESUME');
        return {};
      case 'stop':
        this.status = 'paused';
        this.emit('STOP');
        return {};
      case 'system_powerdown':
        if (!this.ignoresAcpi && this.status === 'running') this.q.clock.after(this.q.acpiShutdownMs, () => this.alive && this.poweroff());
        return {};
      case 'system_reset':
        this.emit('RESET', { guest: false, reason: 'host-qmp-system-reset' });
        return {};
      case 'query-status':
        return { status: this.status, running: this.status === 'running' };
      case 'query-chardev':
        return [{ label: SERIAL_CHARDEV, filename: 'unix:serial.sock,server=on' }];
      case 'balloon':
      case 'block_set_io_throttle':
      case 'block_resize':
      case 'device_add':
        return {};
      case 'query-balloon':
        return { actual: 512 * 1024 * 1024 };
      case 'query-blockstats':
        return [];
      case 'query-hotpluggable-cpus':
        return [];
      default:
        throw new QmpError('CommandNotFound', `The command ${name} has not been found`);
    }
  }
}

/** One host's view of a fake process. */
class FakeMachine implements Machine {
  readonly qmp: QemuCommands;
  readonly serial = null;
  readonly logStart = 0;
  readonly exited: Promise<ExitFacts>;
  private resolveExit!: (f: ExitFacts) => void;
  private readonly listeners: Array<(ev: QmpEvent) => void> = [];
  private readonly tpmListeners: Array<(why: string) => void> = [];
  private tpmFailure: string | null = null;
  private detached = false;

  constructor(
    readonly proc: FakeProcess,
    clock: Clock,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
    const link: QmpLink = {
      get closed() {
        return !proc.alive;
      },
      execute: <T>(command: string, _args?: Record<string, unknown>, timeoutMs = 3000): Promise<T> => {
        if (!proc.alive) return Promise.reject(new Error(`QMP connection closed (${command})`));
        if (proc.frozen)
          return new Promise((_, reject) =>
            clock.after(timeoutMs, () => reject(new Error(`QMP command ${command} timed out after ${timeoutMs} ms`))),
          );
        try {
          return Promise.resolve(proc.command(command) as T);
        } catch (err) {
          return Promise.reject(err as Error);
        }
      },
    };
    this.qmp = new QemuCommands(link);
    proc.handles.add(this);
    if (proc.swtpm === false) this.tpmFailure = 'swtpm was gone when Corral reattached to QEMU';
  }

  onTpmFailed(fn: (why: string) => void): void {
    this.tpmListeners.push(fn);
    if (this.tpmFailure) fn(this.tpmFailure);
  }

  private readonly shareListeners: Array<(why: string) => void> = [];
  private shareFailure: string | null = null;

  onShareFailed(fn: (why: string) => void): void {
    this.shareListeners.push(fn);
    if (this.shareFailure) fn(this.shareFailure);
  }

  shareFailed(why: string): void {
    if (this.detached || this.shareFailure) return;
    this.shareFailure = why;
    for (const fn of this.shareListeners) fn(why);
  }

  tpmFailed(why: string): void {
    if (this.detached || this.tpmFailure) return;
    this.tpmFailure = why;
    for (const fn of this.tpmListeners) fn(why);
  }

  get pid(): number {
    return this.proc.pid;
  }
  get pidStart(): string {
    return this.proc.startTime;
  }

  onEvent(fn: (ev: QmpEvent) => void): void {
    this.listeners.push(fn);
  }

  deliver(ev: QmpEvent): void {
    if (!this.detached) for (const fn of this.listeners) fn(ev);
  }

  ended(facts: ExitFacts): void {
    this.proc.handles.delete(this);
    if (!this.detached) this.resolveExit(facts);
  }

  signal(sig: NodeJS.Signals): void {
    if (this.proc.alive) this.proc.kill(sig);
  }

  detach(): void {
    this.detached = true;
    this.proc.handles.delete(this);
  }
}

export class FakeQemu implements QemuDriver {
  readonly processes: FakeProcess[] = [];
  readonly clock: Clock;
  readonly log: (line: string, vmId: string) => void;
  readonly acpiShutdownMs: number;
  /** The next launch fails with this message. */
  failNextLaunch: string | null = null;
  /** The next launch of these VMs (by id) fails with this message. */
  readonly failLaunchOf = new Map<string, string>();
  /** Set when a second QEMU was launched for a VM that still had one. */
  readonly violations: string[] = [];
  private nextPid = 1001;

  constructor(o: FakeQemuOptions) {
    this.clock = o.clock;
    this.log = o.log;
    this.acpiShutdownMs = o.acpiShutdownMs ?? 1000;
  }

  defaultNicKind(): NicKind {
    return 'user';
  }

  pinnedMachineType(): string {
    return 'pc-q35-7.2';
  }

  /** Set to refuse every VM (as a host whose QEMU lacks its hardware). */
  problem: string | null = null;
  problemFor(): string | null {
    return this.problem;
  }

  /** The live QEMU of a VM, if any. */
  current(vmId: string): FakeProcess | undefined {
    return this.processes.find((p) => p.vmId === vmId && p.alive);
  }

  async launch(spec: LaunchSpec): Promise<Machine> {
    const why = this.failNextLaunch ?? this.failLaunchOf.get(spec.id);
    if (why) {
      this.failNextLaunch = null;
      this.failLaunchOf.delete(spec.id);
      this.log(`qemu: launch failed (${why})`, spec.id);
      throw new Error(`QEMU failed to start: ${why}`);
    }
    if (this.current(spec.id)) this.violations.push(`a second QEMU for ${spec.name} while pid ${this.current(spec.id)!.pid} runs`);
    const proc = new FakeProcess(this.nextPid++, spec.id, `start-${this.clock.now()}`, this);
    if (spec.config.tpm) proc.swtpm = true;
    this.processes.push(proc);
    this.log(`qemu: launched pid ${proc.pid}${spec.config.tpm ? ' (with swtpm)' : ''}`, spec.id);
    return new FakeMachine(proc, this.clock);
  }

  findRunning(vmId: string, pid: number | null, pidStart: string | null): number | null {
    const p = this.processes.find(
      (x) => x.alive && x.vmId === vmId && (pid === null || x.pid === pid) && (pidStart === null || x.startTime === pidStart),
    );
    return p?.pid ?? null;
  }

  async attach(_vmId: string, pid: number): Promise<Machine> {
    const proc = this.processes.find((p) => p.pid === pid && p.alive);
    if (!proc) throw new Error('QMP closed before its greeting');
    if (proc.frozen) throw new Error('QMP greeting timed out');
    if (proc.status === 'prelaunch') proc.command('cont');
    return new FakeMachine(proc, this.clock);
  }

  kill(pid: number): void {
    this.processes.find((p) => p.pid === pid)?.kill('SIGKILL');
  }

  cleanup(): void {}

  forget(): void {}

  crashLogs(): CrashLogs {
    return { serialTail: Buffer.from('[fake serial]'), qemuLog: Buffer.alloc(0) };
  }

  displaySocket(): string | null {
    return null;
  }

  scratchDir(): { dir: string; remove(): void } {
    return { dir: '/nonexistent', remove: () => undefined };
  }
}
