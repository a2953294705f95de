// The Resources tab's form logic (renderer/src/lib/resources.ts): what it sends, what it
// promises applies live, and how it turns samples into chart columns.
import { describe, expect, it } from 'vitest';
import type { VmInfo, VmStats } from '../../electron/core/api/contract';
import { CONFIG_DEFAULTS } from '../../electron/core/api/contract';
import {
  capStops,
  diffArgs,
  formFromConfig,
  memoryStops,
  predict,
  sizeFromError,
  tidyError,
  toColumns,
  validate,
} from '../../renderer/src/lib/resources';

function vm(state: VmInfo['state'], config: Partial<VmInfo['config']> = {}, pending: string[] = []): VmInfo {
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
    booted: null,
    configVersion: 1,
    createdAt: 0,
    config: {
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
    } as VmInfo['config'],
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
    expect(predict(v, f, 'memoryMiB', false)).toBe('boot');
  });

  it('keeps an unset maximum unset on a stopped VM', () => {
    const v = vm('stopped');
    const f = { ...formFromConfig(v), memoryMiB: 512, maxMemoryMiB: 512, cpus: 2, maxCpus: 2 };
    expect(diffArgs(v, f)).toEqual({ vm: 'abc123', memoryMiB: 512, cpus: 2 });
  });

  it('predicts what a running VM takes at once', () => {
    const v = vm('running', { cpus: 1, maxCpus: 4, memoryMiB: 256, maxMemoryMiB: 1024 });
    const f = formFromConfig(v);
    expect(predict(v, { ...f, memoryMiB: 768 }, 'memoryMiB', false)).toBe('live');
    expect(predict(v, { ...f, memoryMiB: 2048 }, 'memoryMiB', false)).toBe('boot');
    expect(predict(v, { ...f, cpus: 3 }, 'cpus', false)).toBe('live');
    expect(predict(v, { ...f, cpus: 5 }, 'cpus', false)).toBe('boot');
    expect(predict(v, f, 'maxCpus', false)).toBe('boot');
    expect(predict(v, f, 'cpuWeight', true)).toBe('live');
    expect(predict(v, f, 'cpuWeight', false)).toBe('boot');
    expect(predict(v, f, 'ioBps', false)).toBe('live');
    expect(predict(vm('stopped'), f, 'memoryMiB', false)).toBeNull();
    // removing vCPUs needs a restart
    const two = vm('running', { cpus: 2, maxCpus: 4 });
    expect(predict(two, { ...formFromConfig(two), cpus: 1 }, 'cpus', false)).toBe('boot');
  });

  it('checks the contract limits', () => {
    const f = formFromConfig(vm('stopped'));
    expect(validate(f)).toEqual({});
    expect(validate({ ...f, memoryMiB: 8 }).memoryMiB).toMatch(/16/);
    expect(validate({ ...f, cpus: 4, maxCpus: 2 }).maxCpus).toMatch(/At least the vCPUs/);
    expect(validate({ ...f, ioBps: 100 }).ioBps).toMatch(/4 KiB/);
    expect(validate({ ...f, cpuWeight: 0 }).cpuWeight).toBe('From 1 to 10000');
  });

  it('offers round slider stops', () => {
    expect(memoryStops(1024)).toEqual([64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024]);
    expect(memoryStops(1000).at(-1)).toBe(1000);
    expect(capStops(2).slice(-3)).toEqual([150, 175, 200]);
  });

  it('reads the host’s disk size refusal', () => {
    const msg = 'invalid argument "size": disks only grow; disk 0 is already 2147483648 bytes';
    expect(sizeFromError(msg)).toBe(2 * 1024 ** 3);
    expect(tidyError(msg)).toBe('Disks only grow; disk 0 is already 2 GiB');
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
