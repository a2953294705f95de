// The rules the host enforces and the page predicts (core/api/rules.ts), and the contract
// derived from them: limits in the schemas, structured errors, arguments derived from VmConfig.
import { describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS, methods, VmConfig, VmState } from '../../electron/core/api/contract';
import { CorralError, Dispatcher, Session, toApiError, type Handlers } from '../../electron/core/api/dispatcher';
import { roleFor } from '../../electron/core/api/roles';
import {
  bootedFrom,
  can,
  isLive,
  isRunning,
  LIMITS,
  LIVE_SETTINGS,
  liveBlocker,
  mountCommand,
  whyNot,
  type VmAction,
} from '../../electron/core/api/rules';

const echo = new Proxy({}, { get: () => (args: unknown) => args }) as unknown as Handlers;
const call = (method: string, args: unknown) => new Dispatcher(echo).handle(new Session('t', () => undefined), { id: 1, method, args });

describe('actions per state', () => {
  const table: Record<VmAction, string[]> = {
    start: ['stopped', 'crashed', 'restarting', 'crash-loop'],
    stop: ['restarting', 'crash-loop', 'running', 'paused', 'stopping'],
    kill: ['restarting', 'crash-loop', 'starting', 'running', 'paused', 'stopping'],
    reset: ['running', 'paused'],
    pause: ['running'],
    resume: ['paused'],
    delete: ['stopped', 'crashed', 'restarting', 'crash-loop'],
    // an incoming VM belongs to its migration until it runs here
    edit: VmState.options.filter((s) => s !== 'incoming'),
  };
  it.each(Object.entries(table))('%s is allowed exactly in %j', (action, states) => {
    expect(VmState.options.filter((s) => can(s, action as VmAction))).toEqual(VmState.options.filter((s) => states.includes(s)));
  });

  it('says why an action is refused, the way the host answers', () => {
    expect(whyNot('web', 'running', 'start')).toBe('"web" is already running');
    expect(whyNot('web', 'stopped', 'stop')).toBe('"web" is not running');
    expect(whyNot('web', 'paused', 'pause')).toBe('"web" is paused: pause needs it running');
    expect(whyNot('web', 'stopped', 'reset')).toBe('"web" is stopped: reset needs it running or paused');
    expect(whyNot('web', 'running', 'delete')).toBe('"web" is running: stop it before deleting it');
  });

  it('knows which states have a QEMU and which take live changes', () => {
    expect(VmState.options.filter(isLive)).toEqual(['starting', 'running', 'paused', 'stopping']);
    expect(VmState.options.filter(isRunning)).toEqual(['running', 'paused']);
  });
});

describe('live changes', () => {
  const booted = bootedFrom({ memoryMiB: 1024, maxMemoryMiB: 2048, cpus: 2, maxCpus: 4 });
  const host = { cgroups: false, cgroupsReason: 'not delegated' };
  const next = (o: Partial<{ memoryMiB: number; cpus: number }>) => ({ memoryMiB: 1024, cpus: 2, ...o });

  it('takes memory up to what QEMU booted with, vCPUs up to its slots and never fewer', () => {
    expect(booted).toEqual({ memoryMiB: 2048, maxCpus: 4, cpus: 2 });
    expect(liveBlocker('memoryMiB', next({ memoryMiB: 2048 }), booted, host)).toBeNull();
    expect(liveBlocker('memoryMiB', next({ memoryMiB: 2049 }), booted, host)).toMatch(/booted with 2048 MiB/);
    expect(liveBlocker('cpus', next({ cpus: 4 }), booted, host)).toBeNull();
    expect(liveBlocker('cpus', next({ cpus: 5 }), booted, host)).toMatch(/room for 4 vCPUs/);
    expect(liveBlocker('cpus', next({ cpus: 1 }), booted, host)).toMatch(/not removed/);
  });

  it('applies supervision settings and I/O limits live; cgroups only where delegated', () => {
    for (const f of ['name', 'restart', 'maxCrashes', 'crashWindowSec', 'liveness', 'livenessStartupSec', 'ioBps', 'ioIops']) {
      expect(liveBlocker(f, next({}), booted, host)).toBeNull();
    }
    expect(liveBlocker('cpuWeight', next({}), booted, host)).toBe('cgroups unavailable: not delegated');
    expect(liveBlocker('cpuWeight', next({}), booted, { cgroups: true })).toBeNull();
  });

  it('lists in LIVE_SETTINGS exactly the settings a running VM can take', () => {
    const roomy = bootedFrom({ memoryMiB: 4096, maxMemoryMiB: null, cpus: 1, maxCpus: 8 });
    const fields = ['name', ...Object.keys(VmConfig.shape)].filter((f) => f !== 'disks');
    const live = fields.filter((f) => liveBlocker(f, next({ memoryMiB: 1024, cpus: 2 }), roomy, { cgroups: true }) === null);
    expect(live.sort()).toEqual([...LIVE_SETTINGS].sort());
  });

  it('keeps everything else for the next boot', () => {
    for (const f of ['maxCpus', 'maxMemoryMiB', 'iso', 'kernel', 'forwards', 'guestWatchdog']) {
      expect(liveBlocker(f, next({}), booted, host)).toBe('it is part of how QEMU was started');
    }
  });
});

describe('the contract, derived', () => {
  it('creates with every setting of VmConfig, defaulted from CONFIG_DEFAULTS', async () => {
    const r = (await call('vm.create', { name: 'web' })) as { result: Record<string, unknown> };
    // firmware and NICs are decided by the host when unset (UEFI for an installer ISO; passt where installed)
    const settings = Object.keys(VmConfig.shape).filter((k) => k !== 'disks' && k !== 'firmware' && k !== 'nics');
    expect(Object.keys(r.result).sort()).toEqual([...settings, 'name', 'disk'].sort());
    for (const k of settings) expect(r.result[k]).toEqual(CONFIG_DEFAULTS[k as keyof typeof CONFIG_DEFAULTS]);
  });

  it('updates any setting of VmConfig but the disks and shared folders (they have their own calls)', () => {
    const shape = methods['vm.update'].args.shape;
    for (const k of Object.keys(VmConfig.shape)) expect(k in shape).toBe(k !== 'disks' && k !== 'shares');
  });

  it('takes a shared folder on vm.create only from an admin', () => {
    expect(roleFor('vm.create', { name: 'a' })).toBe('operator');
    expect(roleFor('vm.create', { name: 'a', shares: [{ path: '/srv/data', readOnly: false, via: 'auto' }] })).toBe('admin');
    expect(roleFor('vm.share.add', { vm: 'a', path: '/srv' })).toBe('admin');
    expect(roleFor('vm.share.remove', { vm: 'a', tag: 'x' })).toBe('operator');
  });

  it('gives the exact mount command for each mechanism', () => {
    expect(mountCommand('data', 'virtiofs', false)).toBe('mkdir -p /mnt/data && mount -t virtiofs data /mnt/data');
    expect(mountCommand('data', 'virtiofs', true)).toBe('mkdir -p /mnt/data && mount -t virtiofs -o ro data /mnt/data');
    expect(mountCommand('d', '9p', true)).toBe('mkdir -p /mnt/d && mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,ro d /mnt/d');
  });

  it('takes its bounds from LIMITS and says which bound was crossed', async () => {
    const low = await call('vm.create', { name: 'x', memoryMiB: LIMITS.memoryMiB.min - 1 });
    expect(low).toMatchObject({
      error: { field: 'memoryMiB', limit: LIMITS.memoryMiB.min, reason: `must be at least ${LIMITS.memoryMiB.min} MiB` },
    });
    const high = await call('vm.update', { vm: 'x', cpus: LIMITS.cpus.max + 1 });
    expect(high).toMatchObject({ error: { field: 'cpus', limit: LIMITS.cpus.max } });
  });

  it('carries a host error’s figures beside its message', () => {
    const e = new CorralError('invalid-argument', 'invalid argument "size": disks only grow', 'size', {
      reason: 'disks only grow',
      current: 1024,
    });
    expect(toApiError(e)).toEqual({
      code: 'invalid-argument',
      message: 'invalid argument "size": disks only grow',
      field: 'size',
      reason: 'disks only grow',
      current: 1024,
    });
  });
});
