// `network.list`: the private networks VMs name (a private network exists while a VM is on
// it), and the host's bridges with whether qemu-bridge-helper may put VMs on them.
import fs from 'node:fs';
import type { NetworkList, VmInfo } from '../api/contract.js';
import { allowedBridges, isBridge } from '../qemu/bridge.js';

export function networkList(vms: readonly VmInfo[], passt: boolean): NetworkList {
  const on = (pick: (n: VmInfo['config']['nics'][number]) => string | null) => {
    const out = new Map<string, string[]>();
    for (const vm of vms)
      for (const nic of vm.config.nics) {
        const key = pick(nic);
        if (key && !out.get(key)?.includes(vm.name)) out.set(key, [...(out.get(key) ?? []), vm.name]);
      }
    return out;
  };
  const privates = on((n) => (n.kind === 'private' ? n.network : null));
  const bridged = on((n) => (n.kind === 'bridge' ? n.bridge : null));
  const acl = allowedBridges();
  let names: string[] = [];
  try {
    names = fs.readdirSync('/sys/class/net').filter(isBridge);
  } catch {
    // no sysfs: no bridges to offer
  }
  for (const b of bridged.keys()) if (!names.includes(b)) names.push(b);
  return {
    private: [...privates].sort(([a], [b]) => a.localeCompare(b)).map(([name, v]) => ({ name, vms: v })),
    bridges: names.sort().map((name) => ({ name, allowed: acl.has(name) || acl.has('all'), vms: bridged.get(name) ?? [] })),
    passt,
  };
}
