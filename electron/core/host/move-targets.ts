// "Move to…": the cluster's other hosts, each with its own answer to whether it can take the VM
// now. The source judges what it knows (reporting, maintenance); the rest — the name, a TPM,
// the machine type and CPU model, firmware, pools and room — is asked of each target with
// migration.checkIncoming, the checks its prepare would make, so the page never guesses.
import { setTimeout as sleep } from 'node:timers/promises';
import type { MoveTarget, MoveTargets, VmInfo } from '../api/contract.js';
import { isRunning } from '../api/rules.js';
import type { PeerClient } from '../vms/migration/peer.js';

/** A host that does not answer within this long is shown as unable, with that reason. */
const ASK_MS = 10_000;

export interface TargetHost {
  name: string;
  self: boolean;
  reporting: boolean;
  maintenance: boolean;
  roomBytes: number | null;
  peer: () => PeerClient;
}

export async function moveTargets(vm: VmInfo, hosts: TargetHost[]): Promise<MoveTargets> {
  const live = isRunning(vm.state);
  const others = hosts.filter((h) => !h.self).sort((a, b) => a.name.localeCompare(b.name));
  const from = hosts.find((h) => h.self)?.name ?? '';
  return { vm: vm.name, from, live, hosts: await Promise.all(others.map((h) => verdict(vm, live, h))) };
}

async function verdict(vm: VmInfo, live: boolean, h: TargetHost): Promise<MoveTarget> {
  const no = (why: string): MoveTarget => ({ name: h.name, ok: false, why, roomBytes: h.roomBytes });
  if (!h.reporting) return no('not reporting (its lease expired)');
  if (h.maintenance) return no(`in maintenance: it takes no VMs until corral host restore ${h.name}`);
  try {
    const asked = h.peer().call('migration.checkIncoming', { name: vm.name, config: vm.config, live });
    const r = await Promise.race([asked, sleep(ASK_MS, null, { ref: false })]);
    if (!r) return no(`did not answer within ${ASK_MS / 1000} s`);
    return r.problem ? no(r.problem) : { name: h.name, ok: true, why: null, roomBytes: h.roomBytes };
  } catch (err) {
    return no(`could not be asked: ${(err as Error).message}`);
  }
}
