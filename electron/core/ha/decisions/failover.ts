// The leader's answer to expired leases: every HA VM owned by a dead host gets a live host with
// room, highest priority first (so when room runs out, the least important wait), each
// placement counted before the next. A VM that fits nowhere stays where it is, and says why.
import type { HaVm, HostView, Move } from './model';
import { committed, place } from './placement';

export interface FailoverPlan {
  moves: Move[];
  stranded: Array<{ vm: string; from: string; why: string }>;
}

export function planFailover(hosts: HostView[], vms: HaVm[]): FailoverPlan {
  const dead = new Set(hosts.filter((h) => !h.alive).map((h) => h.id));
  // a VM whose owner is not a member at all is as orphaned as one whose owner's lease expired
  const known = new Set(hosts.map((h) => h.id));
  const orphans = vms
    .filter((v) => v.ha.enabled && (dead.has(v.owner) || !known.has(v.owner)))
    .sort((a, b) => b.ha.priority - a.ha.priority || a.name.localeCompare(b.name));
  // what survives on live hosts counts; the dead hosts' VMs are about to move
  const placed = vms.filter((v) => !orphans.includes(v));
  const used = committed(placed);
  const plan: FailoverPlan = { moves: [], stranded: [] };
  for (const vm of orphans) {
    const where = place(vm, hosts, placed, used);
    if ('refused' in where) {
      plan.stranded.push({ vm: vm.name, from: vm.owner, why: where.refused });
      continue;
    }
    plan.moves.push({ vm: vm.name, from: vm.owner, to: where.host, epoch: vm.epoch + 1, why: `${vm.owner} lost its lease; ${where.why}` });
    placed.push({ ...vm, owner: where.host });
    used.set(where.host, (used.get(where.host) ?? 0) + vm.memMiB);
  }
  return plan;
}
