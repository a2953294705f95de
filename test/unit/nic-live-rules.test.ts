// What the rules let a running VM's NICs do live: forwards of passt/user NICs change, NICs added
// live go again, the NICs it booted with stay until a restart.
import { describe, expect, it } from 'vitest';
import type { Nic } from '../../electron/core/api/contract';
import { nicsLiveBlocker, sameNic } from '../../electron/core/api/nics';
import { pendingKeys } from '../../electron/core/store/vm-repo';
import { CONFIG_DEFAULTS } from '../../electron/core/api/contract';

const fwd = (hostPort: number) => ({ proto: 'tcp' as const, hostAddr: '127.0.0.1', hostPort, guestPort: 80, exposed: false });
const passt: Nic = { id: 'net0', kind: 'passt', mac: '52:54:00:00:00:01', bridge: null, network: null, forwards: [fwd(8080)] };
const user: Nic = { id: 'net1', kind: 'user', mac: '52:54:00:00:00:02', bridge: null, network: null, forwards: [] };

describe('NIC changes on a running VM', () => {
  it('takes forward changes of passt and user NICs live', () => {
    expect(
      nicsLiveBlocker(
        [passt, user],
        [
          { ...passt, forwards: [] },
          { ...user, forwards: [fwd(9090)] },
        ],
      ),
    ).toBeNull();
  });

  it('removes a NIC added live, and leaves a NIC the VM booted with for the restart, saying why', () => {
    expect(nicsLiveBlocker([passt, { ...user, hotplug: true }], [passt])).toBeNull();
    expect(nicsLiveBlocker([passt, user], [passt])).toMatch(/removing net1 needs a restart \(the NICs a VM boots with/);
  });

  it('still refuses other changes live', () => {
    expect(nicsLiveBlocker([passt], [{ ...passt, mac: '52:54:00:00:00:09' }])).toBe('changing net0 needs a restart');
  });

  it('does not count where a NIC sits as a change pending', () => {
    expect(sameNic({ ...user, hotplug: true }, user)).toBe(true);
    const config = { ...CONFIG_DEFAULTS, disks: [], nics: [passt, user] };
    expect(pendingKeys(config, { ...config, nics: [passt, { ...user, hotplug: true }] })).toEqual([]);
    expect(pendingKeys(config, { ...config, nics: [passt] })).toEqual(['nics']);
  });
});
