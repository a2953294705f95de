// "Move to…": each other host's verdict on a VM, as the owner gathers them — what it knows
// itself (reporting, maintenance) and what each target answers to migration.checkIncoming.
import { describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS, type MethodName, type VmInfo } from '../../electron/core/api/contract';
import { moveTargets, type TargetHost } from '../../electron/core/host/move-targets';
import type { PeerClient } from '../../electron/core/vms/migration/peer';

const vm = (state: VmInfo['state']) =>
  ({ id: 'a1b2c3d4e5f6', name: 'web', state, config: { ...CONFIG_DEFAULTS, disks: [] } }) as unknown as VmInfo;

/** A host whose peer answers checkIncoming with `answer` (an Error: the call fails), noting what it was asked. */
function host(name: string, over: Partial<TargetHost> = {}, answer: string | null | Error = null, asked: unknown[] = []): TargetHost {
  const peer: PeerClient = {
    address: '10.0.0.1',
    close: () => undefined,
    call: (async (method: MethodName, args: unknown) => {
      asked.push({ method, args });
      if (answer instanceof Error) throw answer;
      return { problem: answer };
    }) as PeerClient['call'],
  };
  return { name, self: false, reporting: true, maintenance: false, roomBytes: 1 << 30, peer: () => peer, ...over };
}

describe('moveTargets', () => {
  it('gives every other host its verdict, in name order, live for a running VM', async () => {
    const asked: unknown[] = [];
    const r = await moveTargets(vm('running'), [
      host('zeta', {}, null, asked),
      host('alpha', { self: true }),
      host('beta', { reporting: false, roomBytes: null }),
      host('gamma', { maintenance: true }),
      host('delta', {}, 'this host cannot run "web": machine type pc-q35-9.0 is missing'),
      host('eps', {}, new Error('connect ECONNREFUSED')),
    ]);
    expect(r.from).toBe('alpha');
    expect(r.live).toBe(true);
    expect(r.hosts.map((h) => [h.name, h.ok])).toEqual([
      ['beta', false],
      ['delta', false],
      ['eps', false],
      ['gamma', false],
      ['zeta', true],
    ]);
    const why = Object.fromEntries(r.hosts.map((h) => [h.name, h.why]));
    expect(why.beta).toMatch(/not reporting/);
    expect(why.gamma).toMatch(/maintenance/);
    expect(why.delta).toMatch(/machine type pc-q35-9.0/);
    expect(why.eps).toMatch(/could not be asked: connect ECONNREFUSED/);
    expect(why.zeta).toBeNull();
    // the target is asked with the VM's name, config and whether it arrives running
    expect(asked).toEqual([{ method: 'migration.checkIncoming', args: { name: 'web', config: vm('running').config, live: true } }]);
  });

  it('asks for an offline move when the VM is stopped', async () => {
    const asked: Array<{ args: { live: boolean } }> = [];
    const r = await moveTargets(vm('stopped'), [host('a', { self: true }), host('b', {}, null, asked)]);
    expect(r.live).toBe(false);
    expect(asked[0]!.args.live).toBe(false);
  });
});
