import { describe, expect, it } from 'vitest';
import { canTransition, classifyEnd, isCleanEnd, type EndFacts } from '../../electron/core/supervisor/state';

const none: EndFacts = {
  requested: null,
  shutdown: null,
  panicked: false,
  watchdog: false,
  hung: null,
  tpmFailed: false,
  code: null,
  signal: null,
};

describe('state machine', () => {
  it('allows the lifecycle and nothing else', () => {
    expect(canTransition('stopped', 'starting')).toBe(true);
    expect(canTransition('starting', 'running')).toBe(true);
    expect(canTransition('running', 'paused')).toBe(true);
    expect(canTransition('paused', 'running')).toBe(true);
    expect(canTransition('running', 'stopping')).toBe(true);
    expect(canTransition('stopping', 'stopped')).toBe(true);
    expect(canTransition('running', 'crashed')).toBe(true);
    expect(canTransition('crashed', 'starting')).toBe(true);
    expect(canTransition('stopped', 'running')).toBe(false);
    expect(canTransition('stopped', 'paused')).toBe(false);
    expect(canTransition('stopped', 'crashed')).toBe(false);
    expect(canTransition('crashed', 'running')).toBe(false);
  });
});

describe('classifying the end of a guest', () => {
  it.each<[string, Partial<EndFacts>, string]>([
    ['guest powers off', { shutdown: { guest: true, reason: 'guest-shutdown' }, code: 0 }, 'guest-poweroff'],
    ['guest powers off while reattached (no status)', { shutdown: { guest: true, reason: 'guest-shutdown' } }, 'guest-poweroff'],
    ['user stop (ACPI, guest obeys)', { requested: 'stop', shutdown: { guest: true, reason: 'guest-shutdown' }, code: 0 }, 'user-stop'],
    ['user stop forced', { requested: 'stop', signal: 'SIGKILL' }, 'user-stop'],
    ['user kill', { requested: 'kill', shutdown: { guest: false, reason: 'host-signal' }, code: 0 }, 'user-kill'],
    ['host shutdown', { requested: 'host-shutdown', code: 0 }, 'host-shutdown'],
    ['panic', { panicked: true, code: 1 }, 'guest-panic'],
    ['watchdog', { watchdog: true, code: 0 }, 'guest-watchdog'],
    ['SIGKILL of QEMU', { signal: 'SIGKILL' }, 'qemu-killed'],
    ['SIGTERM of QEMU by someone else', { shutdown: { guest: false, reason: 'host-signal' }, code: 0 }, 'qemu-killed'],
    ['QEMU exits with an error', { code: 1 }, 'qemu-exited'],
    ['QMP gone without SHUTDOWN', {}, 'qemu-exited'],
    ['QMP hang', { hung: 'qemu-hung', signal: 'SIGKILL' }, 'qemu-hung'],
    ['swtpm died, QEMU killed for it', { tpmFailed: true, signal: 'SIGKILL' }, 'tpm-failed'],
  ])('%s', (_label, facts, reason) => {
    expect(classifyEnd({ ...none, ...facts })).toBe(reason);
  });

  it('separates clean ends from crashes', () => {
    expect(['guest-poweroff', 'user-stop', 'user-kill', 'host-shutdown'].every((r) => isCleanEnd(r as never))).toBe(true);
    expect(['guest-panic', 'qemu-killed', 'qemu-exited', 'qemu-hung'].some((r) => isCleanEnd(r as never))).toBe(false);
  });
});
