// The Network tab's logic (renderer/src/lib/network.ts): each NIC marked against what the
// running guest booted with, the NIC list a change sends, forwards checked before they are
// sent (exposed ones flagged for a confirm), the host's error fields landing on an input, and
// per-NIC traffic figures read only when the host sends them.
import { describe, expect, it } from 'vitest';
import type { Nic, VmInfo, VmStats } from '../../electron/core/api/contract';
import { CONFIG_DEFAULTS } from '../../electron/core/api/contract';
import {
  checkForward,
  forwardErrorField,
  hotAddable,
  nicRates,
  nicRows,
  withForward,
  withNic,
  withoutForward,
  withoutNic,
} from '../../renderer/src/lib/network';

const nic = (id: string, patch: Partial<Nic> = {}): Nic => ({
  id,
  kind: 'passt',
  mac: `52:54:00:00:00:0${id.slice(3)}`,
  bridge: null,
  network: null,
  forwards: [],
  ...patch,
});
const fwd = (hostPort: number, guestPort: number) => ({
  proto: 'tcp' as const,
  hostAddr: '127.0.0.1',
  hostPort,
  guestPort,
  exposed: false,
});

function vm(nics: Nic[], booted: Nic[] | null): Pick<VmInfo, 'config' | 'booted'> {
  const config = { ...CONFIG_DEFAULTS, disks: [], nics } as VmInfo['config'];
  return { config, booted: booted && { memoryMiB: 512, maxCpus: 1, cpus: 1, forwards: [], nics: booted } };
}

describe('the Network tab', () => {
  it('marks NICs the running guest has not taken yet, and keeps removed ones until the next boot', () => {
    const a = nic('net0', { forwards: [fwd(2222, 22)] });
    const b = nic('net1', { kind: 'private', network: 'lab' });
    const c = nic('net2', { kind: 'user' });
    expect(nicRows(vm([a, b], null)).map((r) => [r.nic.id, r.pending])).toEqual([
      ['net0', null],
      ['net1', null],
    ]);
    const changed = { ...a, forwards: [fwd(2222, 22), fwd(8080, 80)] };
    expect(nicRows(vm([changed, c], [a, b])).map((r) => [r.nic.id, r.pending])).toEqual([
      ['net0', 'change'],
      ['net2', 'add'],
      ['net1', 'remove'],
    ]);
  });

  it('sends the whole NIC list with ids and MACs kept', () => {
    const v = vm([nic('net0', { forwards: [fwd(2222, 22)] }), nic('net1', { kind: 'user' })], null);
    expect(withNic(v, { kind: 'private', network: 'lab' }).map((n) => n.id ?? n.kind)).toEqual(['net0', 'net1', 'private']);
    expect(withoutNic(v, 'net0').map((n) => [n.id, n.mac])).toEqual([['net1', '52:54:00:00:00:01']]);
    const added = withForward(v, 'net1', fwd(8080, 80));
    expect(added[1]!.forwards).toEqual([fwd(8080, 80)]);
    expect(added[0]!.forwards).toEqual([fwd(2222, 22)]);
    expect(withoutForward(v, 'net0', fwd(2222, 22))[0]!.forwards).toEqual([]);
  });

  it('checks a forward before sending it, and flags what opens the host', () => {
    const draft = { proto: 'tcp' as const, hostAddr: '127.0.0.1', hostPort: 8080, guestPort: 80 };
    expect(checkForward(draft, [])).toEqual({ forward: fwd(8080, 80), exposure: null });
    expect(checkForward({ ...draft, hostPort: null, guestPort: 70000 }, [])).toEqual({
      errors: { hostPort: 'A port from 1 to 65535', guestPort: 'A port from 1 to 65535' },
    });
    expect(checkForward({ ...draft, hostAddr: 'localhost' }, [])).toMatchObject({ errors: { hostAddr: expect.stringMatching(/IPv4/) } });
    expect(checkForward(draft, [fwd(8080, 81)])).toEqual({ errors: { hostPort: 'This VM already forwards tcp host port 8080' } });
    expect(checkForward({ ...draft, hostPort: 80 }, [])).toMatchObject({
      forward: { hostPort: 80, exposed: true },
      exposure: 'host port 80 is below 1024 (system services)',
    });
    expect(checkForward({ ...draft, hostAddr: '0.0.0.0' }, [])).toMatchObject({
      forward: { exposed: true },
      exposure: 'it listens on every network of the host',
    });
  });

  it("puts the host's error on the input it is about", () => {
    expect(forwardErrorField('forwards.1.hostPort')).toBe('hostPort');
    expect(forwardErrorField('nics.2.forwards.0.hostAddr')).toBe('hostAddr');
    expect(forwardErrorField('nics.2.forwards.0.guestPort')).toBe('guestPort');
    expect(forwardErrorField('nics.2.forwards.0.exposed')).toBe('hostPort');
    expect(forwardErrorField('nics.1.bridge')).toBeNull();
    expect(forwardErrorField(undefined)).toBeNull();
  });

  it('hot-adds only what QEMU makes alone', () => {
    expect(['passt', 'user', 'bridge', 'private'].filter((k) => hotAddable(k as Nic['kind']))).toEqual(['user', 'private']);
  });

  it('reads per-NIC traffic only when the host sends it', () => {
    const base: VmStats = {
      vmId: 'x',
      at: 0,
      cpuPercent: 0,
      rssBytes: 0,
      diskReadBps: 0,
      diskWriteBps: 0,
      netRxBps: null,
      netTxBps: null,
    } as VmStats;
    expect(nicRates(base, 'net0')).toBeNull();
    expect(nicRates(null, 'net0')).toBeNull();
    const measured = { ...base, nics: [{ nic: 'net0', rxBps: 10, txBps: 20, note: null }] } as VmStats;
    expect(nicRates(measured, 'net0')).toEqual({ rxBps: 10, txBps: 20 });
    expect(nicRates(measured, 'net1')).toBeNull();
    expect(nicRates({ ...base, nics: [{ nic: 'net0', rxBps: null, txBps: null, note: 'not measured' }] } as VmStats, 'net0')).toBeNull();
  });
});
