// The leader's rounds: which hosts lost their lease since the last round, the failover plan for
// their HA VMs, and what is pending (moved, not yet reported running by the new owner). Pure:
// the etcd side (election, transactions) executes what a round returns, and scenario tests play
// it on a fake clock.
import { planFailover, type FailoverPlan } from './failover';
import type { HaVm, HostView } from './model';

export interface Pending {
  vm: string;
  to: string;
  epoch: number;
  sinceMs: number;
}

export interface LeaderRound {
  /** Hosts whose lease expired since the last round. */
  expired: string[];
  /** Hosts with a lease again. */
  returned: string[];
  /** The moves to make now; `stranded` lists only VMs newly stuck or stuck for a new reason. */
  plan: FailoverPlan;
}

export class HaLeader {
  private alive = new Set<string>();
  private readonly pendings = new Map<string, Pending>();
  /** Why each VM that fits nowhere stays: said once, again only when the reason changes. */
  private readonly stuck = new Map<string, string>();

  round(nowMs: number, hosts: HostView[], vms: HaVm[]): LeaderRound {
    const now = new Set(hosts.filter((h) => h.alive).map((h) => h.id));
    const expired = [...this.alive].filter((h) => !now.has(h)).sort();
    const returned = [...now].filter((h) => !this.alive.has(h)).sort();
    this.alive = now;
    // a move already written waits for its target: never plan it twice
    const plan = planFailover(
      hosts,
      vms.filter((v) => !this.pendings.has(v.name)),
    );
    for (const m of plan.moves) this.pendings.set(m.vm, { vm: m.vm, to: m.to, epoch: m.epoch, sinceMs: nowMs });
    const stranded = plan.stranded.filter((s) => this.stuck.get(s.vm) !== s.why);
    this.stuck.clear();
    for (const s of plan.stranded) this.stuck.set(s.vm, s.why);
    return { expired, returned, plan: { moves: plan.moves, stranded } };
  }

  /** The move of `vm` did not happen (the transaction lost a race): plan it again next round. */
  failed(vm: string): void {
    this.pendings.delete(vm);
  }

  /** The target runs `vm` at `epoch`, or the target died: either way it is no longer pending. */
  settled(vm: string): void {
    this.pendings.delete(vm);
  }

  /** A pending move whose target lost its lease is planned again from there. */
  forgetTargets(dead: string[]): void {
    for (const [vm, p] of this.pendings) if (dead.includes(p.to)) this.pendings.delete(vm);
  }

  get pending(): Pending[] {
    return [...this.pendings.values()];
  }
}
