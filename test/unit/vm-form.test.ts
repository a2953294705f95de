// The create/edit dialog's form logic (renderer/src/lib/vmform.ts): its checks use the shared
// LIMITS, edits send only what changed, and the host's field paths land on an input.
import { describe, expect, it } from 'vitest';
import type { VmInfo } from '../../electron/core/api/contract';
import { CONFIG_DEFAULTS } from '../../electron/core/api/contract';
import { bootedFrom, LIMITS } from '../../electron/core/api/rules';
import { emptyForm, formFromVm, isAdvancedField, normalizeField, validateCreate, validateUpdate } from '../../renderer/src/lib/vmform';

function vm(state: VmInfo['state'], config: Partial<VmInfo['config']> = {}): VmInfo {
  const c = { ...CONFIG_DEFAULTS, disks: [], ...config } as VmInfo['config'];
  return {
    id: 'abc123',
    name: 'web',
    state,
    stateSince: 0,
    pid: null,
    restarts: 0,
    lastExit: null,
    restartAt: null,
    startedAt: null,
    pending: [],
    diskSizes: [],
    booted: state === 'running' || state === 'paused' ? { ...bootedFrom(c), forwards: c.forwards, nics: c.nics } : null,
    configVersion: 1,
    createdAt: 0,
    config: c,
  };
}

const form = (patch: Partial<ReturnType<typeof emptyForm>> = {}) => ({ ...emptyForm(), name: 'web', ...patch });

describe('the VM form', () => {
  it('checks against the shared LIMITS', () => {
    expect(validateCreate(form()).errors).toEqual({});
    expect(validateCreate(form({ cpus: LIMITS.cpus.max })).errors).toEqual({});
    expect(validateCreate(form({ cpus: LIMITS.cpus.max + 1 })).errors.cpus).toBe(`A whole number from 1 to ${LIMITS.cpus.max}`);
    expect(validateCreate(form({ name: 'x'.repeat(LIMITS.nameLength.max) })).errors).toEqual({});
    expect(validateCreate(form({ name: 'x'.repeat(LIMITS.nameLength.max + 1) })).errors.name).toBe('At most 100 characters');
    expect(validateCreate(form({ memory: LIMITS.memoryMiB.min - 1, memoryUnit: 'MiB' })).errors.memoryMiB).toBe('At least 16 MiB');
    expect(validateCreate(form({ memory: 5, memoryUnit: 'GiB' })).errors).toEqual({});
    expect(validateCreate(form({ memory: 4 * 1024 + 1, memoryUnit: 'GiB' })).errors.memoryMiB).toBe('At most 4 TiB');
    expect(validateCreate(form({ maxCrashes: LIMITS.maxCrashes.max + 1 })).errors.maxCrashes).toBe('A whole number from 1 to 1000');
    expect(validateCreate(form({ crashWindow: 0.1, crashWindowUnit: 'min' })).errors.crashWindowSec).toBe('At least 10 seconds');
    expect(validateCreate(form({ crashWindow: 7 * 24 + 1, crashWindowUnit: 'h' })).errors.crashWindowSec).toBe('At most 7 days');
    expect(validateCreate(form({ diskSize: 65, diskUnit: 'TiB' })).errors['disk.size']).toBe('At most 64 TiB');
    expect(validateCreate(form({ diskSize: 0.5, diskUnit: 'MiB' })).errors['disk.size']).toBe('At least 1 MiB');
  });

  it('sends only what an edit changed; memory above what a running VM booted with raises the boot memory', () => {
    const stopped = vm('stopped', { memoryMiB: 1024 });
    expect(validateUpdate(formFromVm(stopped), stopped).args).toEqual({ vm: 'abc123' });
    expect(validateUpdate({ ...formFromVm(stopped), memory: 2 }, stopped).args).toEqual({ vm: 'abc123', memoryMiB: 2048 });
    const running = vm('running', { memoryMiB: 1024 });
    expect(validateUpdate({ ...formFromVm(running), memory: 2 }, running).args).toEqual({
      vm: 'abc123',
      memoryMiB: 2048,
      maxMemoryMiB: 2048,
    });
  });

  it('leaves the firmware to the host unless chosen; edits send hardware changes', () => {
    expect(validateCreate(form()).args).not.toHaveProperty('firmware');
    expect(validateCreate(form({ firmware: 'uefi-secure', tpm: true })).args).toMatchObject({ firmware: 'uefi-secure', tpm: true });
    const stopped = vm('stopped', { firmware: 'uefi', machineType: 'pc-q35-7.2' });
    expect(formFromVm(stopped)).toMatchObject({ firmware: 'uefi', tpm: false, cpuModel: 'Westmere-v1' });
    expect(validateUpdate({ ...formFromVm(stopped), firmware: 'bios', tpm: true, cpuModel: 'host' }, stopped).args).toEqual({
      vm: 'abc123',
      firmware: 'bios',
      tpm: true,
      cpuModel: 'host',
    });
    expect(isAdvancedField('firmware')).toBe(true);
  });

  it('edits the liveness probe’s start-up window (livenessStartupSec) while a probe is on', () => {
    const probed = vm('stopped', { liveness: { kind: 'agent' }, livenessStartupSec: 300 });
    expect(formFromVm(probed)).toMatchObject({ livenessStartup: 5, livenessStartupUnit: 'min' });
    expect(formFromVm(vm('stopped', { livenessStartupSec: 90 }))).toMatchObject({ livenessStartup: 90, livenessStartupUnit: 's' });
    // sent only when it changed
    expect(validateUpdate(formFromVm(probed), probed).args).toEqual({ vm: 'abc123' });
    expect(validateUpdate({ ...formFromVm(probed), livenessStartup: 10 }, probed).args).toEqual({ vm: 'abc123', livenessStartupSec: 600 });
    expect(validateUpdate({ ...formFromVm(probed), livenessStartup: 45, livenessStartupUnit: 's' }, probed).args).toEqual({
      vm: 'abc123',
      livenessStartupSec: 45,
    });
    // within LIMITS.livenessStartupSec
    const at = (v: number | null, unit: 's' | 'min') =>
      validateUpdate({ ...formFromVm(probed), livenessStartup: v, livenessStartupUnit: unit }, probed).errors.livenessStartupSec;
    expect(at(LIMITS.livenessStartupSec.min, 's')).toBeUndefined();
    expect(at(LIMITS.livenessStartupSec.max / 60, 'min')).toBeUndefined();
    expect(at(LIMITS.livenessStartupSec.min - 1, 's')).toBe('At least 10 seconds');
    expect(at(LIMITS.livenessStartupSec.max / 60 + 1, 'min')).toBe('At most 24 hours');
    expect(at(null, 'min')).toBe('Enter how long');
    // with the probe off it is neither checked nor sent
    const off = { ...formFromVm(probed), livenessKind: 'off' as const, livenessStartup: null };
    expect(validateUpdate(off, probed)).toEqual({ errors: {}, args: { vm: 'abc123', liveness: null } });
    expect(validateCreate(form({ livenessStartup: null })).args).not.toHaveProperty('livenessStartupSec');
    expect(validateCreate(form({ livenessKind: 'agent' })).args).toMatchObject({ liveness: { kind: 'agent' }, livenessStartupSec: 300 });
    expect(isAdvancedField('livenessStartupSec')).toBe(true);
  });

  it('puts the host’s field paths on an input', () => {
    const f = form({ livenessKind: 'tcp' });
    expect(normalizeField('forwards.2', f)).toBe('forwards.2.hostPort');
    expect(normalizeField('forwards.2.proto', f)).toBe('forwards.2.hostPort');
    expect(normalizeField('forwards.2.hostAddr', f)).toBe('forwards.2.hostPort');
    expect(normalizeField('forwards.2.guestPort', f)).toBe('forwards.2.guestPort');
    expect(normalizeField('forwards', f)).toBe('forwards');
    expect(normalizeField('liveness', f)).toBe('liveness.port');
    expect(normalizeField('liveness', form())).toBe('liveness.kind');
    expect(normalizeField('disk', form({ diskMode: 'existing' }))).toBe('disk.image');
    expect(normalizeField('disk', form())).toBe('disk.size');
    expect(normalizeField('memoryMiB', f)).toBe('memoryMiB');
    expect(isAdvancedField('forwards.0.hostPort')).toBe(true);
    expect(isAdvancedField('liveness.port')).toBe(true);
    expect(isAdvancedField('memoryMiB')).toBe(false);
  });
});
