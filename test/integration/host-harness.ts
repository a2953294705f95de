// Runs a real host in-process on a temp data dir and calls it through the dispatcher, the
// same path every transport takes (so argument validation is exercised too).
import fs from 'node:fs';
import path from 'node:path';
import type { ArgsIn, EventName, MethodName, Result } from '../../electron/core/api/contract';
import { Host, type HostOptions } from '../../electron/core/host/host';
import type { HealthTiming } from '../../electron/core/supervisor/health';
import { BOOT_MS, FIXTURE, FIXTURE_DIR, tempDir, waitFor } from '../helpers';

export class TestHost {
  serial = new Map<string, string>();
  events: Array<{ event: EventName; payload: unknown }> = [];
  private session;
  private nextId = 1;

  private constructor(
    readonly host: Host,
    readonly dataDir: string,
  ) {
    this.session = host.session('test', (event, payload) => {
      this.events.push({ event, payload });
      if (event === 'serial.data') {
        const p = payload as { vmId: string; data: string };
        this.serial.set(p.vmId, (this.serial.get(p.vmId) ?? '') + Buffer.from(p.data, 'base64').toString('latin1'));
      }
    });
  }

  static async start(dataDir = tempDir(), health?: Partial<HealthTiming>, opts: Pick<HostOptions, 'autostart'> = {}): Promise<TestHost> {
    const host = await Host.start({
      dataDir,
      kind: 'test',
      env: { ...process.env, CORRAL_ACCEL: 'tcg' },
      health,
      defaults: { hostShell: true, monitor: true },
      ...opts,
    });
    const t = new TestHost(host, dataDir);
    // the guest's kernel and initrd are used where they are: their folder is a pool
    if (!(await t.call('pool.list', {})).some((p) => p.name === 'fixtures'))
      await t.call('pool.add', { name: 'fixtures', path: FIXTURE_DIR });
    return t;
  }

  async call<M extends MethodName>(method: M, args: ArgsIn<M>): Promise<Result<M>> {
    const r = await this.host.dispatcher.handle(this.session, { id: this.nextId++, method, args });
    if ('error' in r) throw Object.assign(new Error(r.error.message), { api: r.error });
    return r.result as Result<M>;
  }

  /** Attaches to the VM's serial console; output accumulates in this.serial. */
  async attach(vm: string): Promise<string> {
    const { id } = await this.call('vm.get', { vm });
    await this.call('serial.attach', { vm: id });
    return id;
  }

  async type(vm: string, text: string): Promise<void> {
    await this.call('serial.write', { vm, data: Buffer.from(text).toString('base64') });
  }

  waitSerial(vmId: string, pattern: RegExp | string, timeoutMs = BOOT_MS): Promise<boolean> {
    return waitFor(
      `serial output ${String(pattern)} (last output: ${JSON.stringify(stripAnsi(this.serial.get(vmId) ?? '').slice(-300))})`,
      () => {
        const out = stripAnsi(this.serial.get(vmId) ?? '');
        return typeof pattern === 'string' ? out.includes(pattern) : pattern.test(out);
      },
      timeoutMs,
    );
  }

  close(): Promise<void> {
    return this.host.close();
  }
}

/** Copies the guest fixture into a pool directory whose name needs escaping in QEMU options. */
export function oddFixture(dataDir: string): { kernel: string; initrd: string } {
  const dir = fs.mkdtempSync(path.join(dataDir, 'images', 'boot, files "ü" '));
  const kernel = path.join(dir, 'vmlinuz, v1');
  const initrd = path.join(dir, 'initrd ü.gz');
  fs.copyFileSync(FIXTURE.kernel, kernel);
  fs.copyFileSync(FIXTURE.initrd, initrd);
  return { kernel, initrd };
}

export function guestArgs(name: string, extra: Partial<ArgsIn<'vm.create'>> = {}): ArgsIn<'vm.create'> {
  return { name, memoryMiB: 256, kernel: FIXTURE.kernel, initrd: FIXTURE.initrd, append: 'console=ttyS0 quiet', ...extra };
}

/** busybox's shell queries the cursor position after each prompt; tests match plain text. */
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
}
