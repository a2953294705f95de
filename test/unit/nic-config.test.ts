import { describe, expect, it } from 'vitest';
import { methods, type Nic } from '../../electron/core/api/contract';
import { toApiError } from '../../electron/core/api/dispatcher';
import { LEGACY_MAC } from '../../electron/core/api/nics';
import { passtForwardArgs } from '../../electron/core/qemu/passt';
import { hostSeenAddresses, neighbours } from '../../electron/core/vms/guest-addresses';
import { resolveNics, type NicIn } from '../../electron/core/vms/nic-config';

const fwd = { proto: 'tcp' as const, hostAddr: '127.0.0.1', hostPort: 2222, guestPort: 22, exposed: false };
const nicIn = (kind: Nic['kind'], more: Partial<NicIn> = {}): NicIn => ({ kind, bridge: null, network: null, forwards: [], ...more });

function caught(fn: () => unknown): { field?: string; reason?: string } {
  try {
    fn();
  } catch (err) {
    return toApiError(err);
  }
  throw new Error('did not throw');
}

describe('NIC lists', () => {
  it('gives new NICs free ids and distinct MACs, and keeps known ones', () => {
    const { nics } = resolveNics([nicIn('passt'), nicIn('private', { network: 'lab' })], []);
    expect(nics.map((n) => n.id)).toEqual(['net0', 'net1']);
    expect(nics[0]!.mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(nics[0]!.mac).not.toBe(nics[1]!.mac);
    // net0 removed, a new one added: net1 keeps its MAC, the new one takes the free net0
    const again = resolveNics([{ ...nics[1]!, mac: undefined }, nicIn('user')], nics).nics;
    expect(again.map((n) => [n.id, n.mac])).toEqual([
      ['net1', nics[1]!.mac],
      ['net0', expect.not.stringMatching(nics[1]!.mac)],
    ]);
  });

  it('puts the top-level forwards on the first passt or user NIC, and mirrors them', () => {
    const r = resolveNics([nicIn('private', { network: 'lab' }), nicIn('user')], [], [fwd]);
    expect(r.nics[1]!.forwards).toEqual([fwd]);
    expect(r.forwards).toEqual([fwd]);
    expect(caught(() => resolveNics([nicIn('private', { network: 'lab' })], [], [fwd]))).toMatchObject({
      field: 'forwards',
      reason: 'forwards need a passt or user NIC',
    });
  });

  it('names the field of a NIC that lacks what its kind needs', () => {
    expect(caught(() => resolveNics([nicIn('user'), nicIn('bridge')], []))).toMatchObject({ field: 'nics.1.bridge' });
    expect(caught(() => resolveNics([nicIn('private')], []))).toMatchObject({ field: 'nics.0.network' });
    expect(caught(() => resolveNics([nicIn('private', { network: 'x', forwards: [fwd] })], []))).toMatchObject({
      field: 'nics.0.forwards',
    });
    expect(caught(() => resolveNics([nicIn('user', { mac: LEGACY_MAC }), nicIn('user', { mac: LEGACY_MAC })], []))).toMatchObject({
      field: 'nics.1.mac',
    });
  });

  it('refuses a multicast MAC and a bad network name in the schema', () => {
    const r = methods['vm.create'].args.safeParse({ name: 'x', nics: [{ kind: 'user', mac: '01:00:5e:00:00:01' }] });
    expect(r.success).toBe(false);
    const n = methods['vm.create'].args.safeParse({ name: 'x', nics: [{ kind: 'private', network: 'Bad Name' }] });
    expect(n.error?.issues[0]?.path).toEqual(['nics', 0, 'network']);
  });

  it("spells forwards as passt's -t/-u", () => {
    expect(passtForwardArgs([fwd, { ...fwd, proto: 'udp', hostAddr: '0.0.0.0', hostPort: 5353, guestPort: 53 }])).toEqual([
      '-t',
      '127.0.0.1/2222:22',
      '-u',
      '5353:53',
    ]);
  });
});

describe('guest addresses the host can see', () => {
  it('reads the neighbour table by MAC, skipping entries that never answered', () => {
    const arp = [
      'IP address       HW type     Flags       HW address            Mask     Device',
      '10.88.0.2        0x1         0x2         52:54:00:AA:BB:CC     *        br0',
      '10.88.0.3        0x1         0x0         00:00:00:00:00:00     *        br0',
    ].join('\n');
    expect(neighbours(arp)).toEqual(new Map([['52:54:00:aa:bb:cc', ['10.88.0.2']]]));
  });

  it('says plainly where it cannot see', () => {
    const nics: Nic[] = [
      { id: 'net0', kind: 'user', mac: LEGACY_MAC, bridge: null, network: null, forwards: [] },
      { id: 'net1', kind: 'private', mac: '52:54:00:00:00:02', bridge: null, network: 'lab', forwards: [] },
    ];
    expect(hostSeenAddresses(nics)).toEqual([
      expect.objectContaining({ nic: 'net0', addresses: ['10.0.2.15'], source: 'host' }),
      expect.objectContaining({ nic: 'net1', addresses: [], source: 'unknown' }),
    ]);
  });
});
