// The Resources tab's form logic (renderer/src/lib/resources.ts): what it sends, what it
// promises applies live (the host's own rules, api/rules, against what the VM booted with),
// what it shows of the host's refusals, and how it turns samples into chart columns.
import { describe, expect, it } from 'vitest';
import type { ApiError, VmInfo, VmStats } from '../../electron/core/api/contract';
import { CONFIG_DEFAULTS } from '../../electron/core/api/contract';
import { bootedFrom, LIMITS, liveBlocker, type Booted, type HostAbilities } from '../../electron/core/api/rules';
import { ApiCallError } from '../../renderer/src/lib/api';
import { reasonText } from '../../renderer/src/lib/format';
import {
  blocker,
  canAddCpuLive,
  capStops,
  diffArgs,
  formFromConfig,
  growRefusal,
  liveFailures,
  memoryStops,
  predict,
  RES_KEYS,
  toColumns,
  validate,
} from '../../renderer/src/lib/resources';

const NO_CGROUPS: HostAbilities = { cgroups: false, cgroupsReason: 'not delegated' };
const CGROUPS: HostAbilities = { cgroups: true };

/** A VM; a running one booted with its config unless `booted` says otherwise (a pending change). */
function vm(state: VmInfo['state'], config: Partial<VmInfo['config']> = {}, pending: string[] = [], booted?: Booted): VmInfo {
  const running = state === 'running' || state === 'paused';
  const c = {
    ...CONFIG_DEFAULTS,
    cpus: 1,
    memoryMiB: 256,
    disks: [],
    iso: null,
    kernel: null,
    initrd: null,
    append: null,
    forwards: [],
    restart: 'never',
    guestWatchdog: 'off',
    ...config,
  } as VmInfo['config'];
  return {
    id: 'abc123',
    name: 'v',
    state,
    stateSince: 0,
    pid: state === 'running' ? 42 : null,
    restarts: 0,
    lastExit: null,
    restartAt: null,
    startedAt: null,
    pending,
    diskSizes: [],
    booted: running ? { ...(booted ?? bootedFrom(c)), forwards: c.forwards, nics: c.nics } : null,
    configVersion: 1,
    createdAt: 0,
    config: c,
  };
}

describe('resources form', () => {
  it('sends only what changed', () => {
    const v = vm('running');
    const f = formFromConfig(v);
    expect(diffArgs(v, f)).toEqual({ vm: 'abc123' });
    expect(diffArgs(v, { ...f, ioIops: 500 })).toEqual({ vm: 'abc123', ioIops: 500 });
  });

  it('raising memory above what a running VM booted with also sends the new boot memory', () => {
    // the host refuses memoryMiB above a boot memory it pins itself, so the UI says both
    const v = vm('running');
    const f = { ...formFromConfig(v), memoryMiB: 512, maxMemoryMiB: 512 };
    expect(diffArgs(v, f)).toEqual({ vm: 'abc123', memoryMiB: 512, maxMemoryMiB: 512 });
    expect(predict(v, f, 'memoryMiB', NO_CGROUPS)).toBe('boot');
  });

  it('keeps an unset maximum unset on a stopped VM', () => {
    const v = vm('stopped');
    const f = { ...formFromConfig(v), memoryMiB: 512, maxMemoryMiB: 512, cpus: 2, maxCpus: 2 };
    expect(diffArgs(v, f)).toEqual({ vm: 'abc123', memoryMiB: 512, cpus: 2 });
  });

  it('predicts what a running VM takes at once', () => {
    const v = vm('running', { cpus: 1, maxCpus: 4, memoryMiB: 256, maxMemoryMiB: 1024 });
    const f = formFromConfig(v);
    expect(predict(v, { ...f, memoryMiB: 768 }, 'memoryMiB', NO_CGROUPS)).toBe('live');
    expect(predict(v, { ...f, memoryMiB: 2048 }, 'memoryMiB', NO_CGROUPS)).toBe('boot');
    expect(predict(v, { ...f, cpus: 3 }, 'cpus', NO_CGROUPS)).toBe('live');
    expect(predict(v, { ...f, cpus: 5 }, 'cpus', NO_CGROUPS)).toBe('boot');
    expect(predict(v, f, 'maxCpus', NO_CGROUPS)).toBe('boot');
    expect(predict(v, f, 'cpuWeight', CGROUPS)).toBe('live');
    expect(predict(v, f, 'cpuWeight', NO_CGROUPS)).toBe('boot');
    expect(predict(v, f, 'ioBps', NO_CGROUPS)).toBe('live');
    expect(predict(vm('stopped'), f, 'memoryMiB', NO_CGROUPS)).toBeNull();
    // removing vCPUs needs a restart
    const two = vm('running', { cpus: 2, maxCpus: 4 });
    expect(predict(two, { ...formFromConfig(two), cpus: 1 }, 'cpus', NO_CGROUPS)).toBe('boot');
  });

  it('predicts from what the VM booted with, not from its saved settings', () => {
    // saved: 1 GiB and 4 vCPUs, pending; the running QEMU has 256 MiB and room for 2 vCPUs
    const booted = { memoryMiB: 256, maxCpus: 2, cpus: 1 };
    const v = vm('running', { cpus: 4, memoryMiB: 1024 }, ['cpus', 'memoryMiB'], booted);
    const f = formFromConfig(v);
    expect(predict(v, { ...f, memoryMiB: 512 }, 'memoryMiB', NO_CGROUPS)).toBe('boot');
    expect(predict(v, { ...f, memoryMiB: 256 }, 'memoryMiB', NO_CGROUPS)).toBe('live');
    expect(predict(v, { ...f, cpus: 2 }, 'cpus', NO_CGROUPS)).toBe('live');
    expect(predict(v, { ...f, cpus: 3 }, 'cpus', NO_CGROUPS)).toBe('boot');
    expect(canAddCpuLive(v, NO_CGROUPS)).toBe(true);
    expect(canAddCpuLive(vm('running', { cpus: 2 }), NO_CGROUPS)).toBe(false);
    expect(canAddCpuLive(vm('stopped', { cpus: 1, maxCpus: 4 }), NO_CGROUPS)).toBe(false);
  });

  it('says what the host’s liveBlocker says, for every field, form and host', () => {
    const booted = { memoryMiB: 512, maxCpus: 4, cpus: 2 };
    const v = vm('paused', { cpus: 3, maxCpus: 4, memoryMiB: 768, maxMemoryMiB: 1024 }, ['memoryMiB', 'maxMemoryMiB', 'cpus'], booted);
    const base = formFromConfig(v);
    const forms = [base, { ...base, cpus: 1 }, { ...base, cpus: 4 }, { ...base, cpus: 5, maxCpus: 5 }, { ...base, memoryMiB: 256 }];
    for (const host of [CGROUPS, NO_CGROUPS])
      for (const f of forms)
        for (const key of RES_KEYS) {
          const why = liveBlocker(key, f, booted, host);
          expect(blocker(v, f, key, host)).toBe(why);
          expect(predict(v, f, key, host)).toBe(why === null ? 'live' : 'boot');
        }
    // the reason is the host's, word for word
    expect(blocker(v, { ...base, memoryMiB: 600 }, 'memoryMiB', NO_CGROUPS)).toBe('it booted with 512 MiB, the most the balloon can give');
    expect(blocker(v, base, 'cpuWeight', NO_CGROUPS)).toBe('cgroups unavailable: not delegated');
  });

  it('shows, on each field, why a change sent as live did not apply (vm.update’s notLive)', () => {
    const notLive = [
      { field: 'memoryMiB', why: 'the balloon driver did not answer' },
      { field: 'maxCpus', why: 'it is part of how QEMU was started' },
    ];
    // maxCpus was known to wait for the boot: not a failure
    expect(liveFailures(notLive, ['memoryMiB', 'cpus'])).toEqual({ memoryMiB: 'Not applied live: the balloon driver did not answer' });
    expect(liveFailures([], ['memoryMiB'])).toEqual({});
  });

  it('checks the contract limits', () => {
    const f = formFromConfig(vm('stopped'));
    expect(validate(f)).toEqual({});
    expect(validate({ ...f, memoryMiB: 8 }).memoryMiB).toMatch(/16/);
    expect(validate({ ...f, cpus: 4, maxCpus: 2 }).maxCpus).toMatch(/At least the vCPUs/);
    expect(validate({ ...f, ioBps: 100 }).ioBps).toBe('At least 4 KiB/s');
    expect(validate({ ...f, ioBps: 2 ** 41 }).ioBps).toBe('At most 1 TiB/s');
    expect(validate({ ...f, cpuWeight: 0 }).cpuWeight).toBe('From 1 to 10000');
    expect(validate({ ...f, cpuWeight: 1.5 }).cpuWeight).toBe('Enter a whole number');
  });

  it('takes its bounds from the shared LIMITS', () => {
    const f = formFromConfig(vm('stopped'));
    const edge = { cpus: LIMITS.cpus, cpuWeight: LIMITS.cpuWeight, cpuCapPercent: LIMITS.cpuCapPercent, ioIops: LIMITS.ioIops } as const;
    for (const [k, { min, max }] of Object.entries(edge)) {
      const at = (v: number) => validate({ ...f, maxCpus: Math.max(f.maxCpus, k === 'cpus' ? v : 0), [k]: v })[k as keyof typeof edge];
      expect(at(min)).toBeUndefined();
      expect(at(max)).toBeUndefined();
      expect(at(min - 1)).toBe(
        `From ${min} to ${max}${k === 'cpus' ? ' vCPUs' : k === 'cpuCapPercent' ? ' %' : k === 'ioIops' ? ' operations/s' : ''}`,
      );
      expect(at(max + 1)).toBeDefined();
    }
    expect(validate({ ...f, memoryMiB: LIMITS.memoryMiB.min, maxMemoryMiB: LIMITS.memoryMiB.min })).toEqual({});
    expect(validate({ ...f, memoryMiB: LIMITS.memoryMiB.min - 1, maxMemoryMiB: 256 }).memoryMiB).toBeDefined();
  });

  it('offers round slider stops', () => {
    expect(memoryStops(1024)).toEqual([64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024]);
    expect(memoryStops(1000).at(-1)).toBe(1000);
    expect(capStops(2).slice(-3)).toEqual([150, 175, 200]);
  });

  it('shows the size of a disk the host refused to shrink from ApiError.current, not from its message', () => {
    // as the page gets it: the host's ApiError in the client's error
    const refusal = (message: string, extra: Partial<ApiError> = {}) =>
      new ApiCallError('vm.resizeDisk', { code: 'invalid-argument', message, field: 'size', ...extra });
    // the figure comes from `current` alone: the message is not read
    expect(growRefusal(refusal('no figures in here', { reason: 'nor here', current: 2 * 1024 ** 3 }))).toEqual({
      text: 'Disks only grow: it is already 2 GiB',
      current: 2 * 1024 ** 3,
    });
    const msg = 'invalid argument "size": disks only grow; disk 0 is already 2147483648 bytes';
    expect(growRefusal(refusal(msg))).toEqual({ text: msg.charAt(0).toUpperCase() + msg.slice(1), current: null });
    // other refusals: the host's reason, without the preamble
    expect(growRefusal(refusal(msg.replace('2147483648', '1'), { reason: 'must be at most 64 TiB', limit: 64 * 1024 ** 4 }))).toEqual({
      text: 'Must be at most 64 TiB',
      current: null,
    });
  });

  it('keeps everything the host said about a failed call', () => {
    const sent: ApiError = { code: 'invalid-argument', message: 'm', field: 'size', reason: 'r', limit: 1, current: 2 };
    const err = new ApiCallError('vm.resizeDisk', sent);
    expect(err).toMatchObject({ ...sent, method: 'vm.resizeDisk' });
    expect(err.apiError).toEqual(sent);
    expect(new ApiCallError('vm.get', { code: 'not-found', message: 'no VM "x"' }).apiError).toEqual({
      code: 'not-found',
      message: 'no VM "x"',
    });
  });

  it('shows a field’s refusal by its reason, never by taking the message apart', () => {
    expect(
      reasonText(Object.assign(new Error('invalid argument "memoryMiB": must be at least 16 MiB'), { reason: 'must be at least 16 MiB' })),
    ).toBe('Must be at least 16 MiB');
    expect(reasonText(new Error('a VM named "web" already exists'))).toBe('A VM named "web" already exists');
    expect(reasonText('plain')).toBe('Plain');
  });

  it('turns a pause in the samples into a gap in the chart', () => {
    const s = (at: number, cpu: number): VmStats => ({
      vmId: 'v',
      at,
      cpuPercent: cpu,
      rssBytes: 1,
      balloonBytes: null,
      diskReadBps: 0,
      diskWriteBps: 0,
      netRxBps: null,
      netTxBps: null,
    });
    const c = toColumns([s(0, 1), s(2000, 2), s(60_000, 3)], 10_000);
    expect(c.x).toEqual([0, 2000, 2001, 60_000]);
    expect(c.cpu).toEqual([1, 2, null, 3]);
  });
});
