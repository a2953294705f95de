// Load shedding, as Proxmox 5.2's auto-rebalance: each live host's load (memory weighted above
// CPU), the cluster's imbalance (coefficient of variation / √(n−1), 0 = even, 1 = all on one),
// and when it stays above a threshold for a holding time, one migration: the one that cuts the
// imbalance most, if the cut is worth it. A moved VM is not moved again within its cooldown; a
// host above the hard memory limit sheds first, without waiting for the holding time.
import type { HaVm, HostView, Move } from './model';
import { committed, refusal } from './placement';

export interface BalanceOptions {
  threshold: number;
  holdMs: number;
  cooldownMs: number;
  /** The least relative cut of the imbalance a move must bring (0.1 = 10 %). */
  minGain: number;
  /** Memory in use over this fraction of a host: it sheds first. */
  hardMemLimit: number;
  memWeight: number;
  /** A guest whose QEMU started less than this long ago stays: its figures are of its boot, and a kernel still booting has panicked after a move. */
  minUptimeMs?: number;
}

export const BALANCE_DEFAULTS: BalanceOptions = {
  threshold: 0.3,
  holdMs: 30_000,
  cooldownMs: 30 * 60_000,
  minGain: 0.1,
  hardMemLimit: 0.95,
  memWeight: 0.7,
  minUptimeMs: 60_000,
};

interface Load {
  mem: number;
  cpu: number;
}

function loads(hosts: HostView[], vms: HaVm[]): Map<string, Load> {
  const m = new Map<string, Load>();
  for (const h of hosts) {
    // measured whole-host figures when there are; else what its VMs use
    const own = vms.filter((v) => v.owner === h.id);
    const mem = h.memUsedMiB ?? own.reduce((s, v) => s + (v.memUsedMiB ?? v.memMiB), 0);
    const cpu = h.cpuUsed ?? own.reduce((s, v) => s + (v.cpuUsed ?? 0), 0);
    m.set(h.id, { mem, cpu });
  }
  return m;
}

export function hostLoad(h: HostView, l: Load, o: BalanceOptions = BALANCE_DEFAULTS): number {
  return o.memWeight * (l.mem / h.memMiB) + (1 - o.memWeight) * (l.cpu / h.cpus);
}

/** Normalized coefficient of variation of the loads: 0 when even, 1 when one host carries all. */
export function imbalance(values: number[]): number {
  const n = values.length;
  if (n < 2) return 0;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (mean <= 0) return 0;
  const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / n);
  return sd / mean / Math.sqrt(n - 1);
}

export interface BalanceReport {
  imbalance: number;
  loads: Record<string, number>;
  /** Null when nothing should move now; `why` says what holds it back. */
  proposal: Move | null;
  /** The imbalance once the proposal is made (null without one). */
  after: number | null;
  why: string;
  /** HA VMs on the hosts that would shed which may not move now, and why (cannot migrate, cooldown, no target). */
  held: Array<{ vm: string; why: string }>;
}

/** The leader's balancer: call `round` at each sampling round with the cluster as it is. */
export class Balancer {
  private aboveSince: number | null = null;
  private readonly movedAt = new Map<string, number>();

  constructor(readonly opts: BalanceOptions = BALANCE_DEFAULTS) {}

  /** A migration was made or tried (by us or by hand): the VM rests for its cooldown. */
  moved(vm: string, nowMs: number): void {
    this.movedAt.set(vm, Math.max(nowMs, this.movedAt.get(vm) ?? 0));
  }

  /** `name` turns a host id into the name the reasons give. */
  round(nowMs: number, allHosts: HostView[], vms: HaVm[], name: (hostId: string) => string = (id) => id): BalanceReport {
    const o = this.opts;
    const hosts = allHosts.filter((h) => h.alive);
    const l = loads(hosts, vms);
    const score = (h: HostView, load = l.get(h.id)!) => hostLoad(h, load, o);
    const now = imbalance(hosts.map((h) => score(h)));
    const overLimit = hosts.filter((h) => l.get(h.id)!.mem / h.memMiB > o.hardMemLimit);
    const used = committed(vms);
    const sources = overLimit.length ? overLimit : hosts;
    const held: BalanceReport['held'] = [];
    let best: { move: Move; after: number } | null = null;
    for (const vm of vms) {
      if (!vm.ha.enabled || !sources.some((h) => h.id === vm.owner)) continue;
      if (vm.cannotMove) {
        held.push({ vm: vm.name, why: vm.cannotMove });
        continue;
      }
      const since = this.movedAt.get(vm.name);
      if (since !== undefined && nowMs - since < o.cooldownMs) {
        const left = Math.ceil((o.cooldownMs - (nowMs - since)) / 1000);
        held.push({
          vm: vm.name,
          why: `moved ${Math.round((nowMs - since) / 1000)} s ago: rests ${left} s more (cooldown ${o.cooldownMs / 1000} s)`,
        });
        continue;
      }
      const from = l.get(vm.owner)!;
      const dm = vm.memUsedMiB ?? vm.memMiB;
      const dc = vm.cpuUsed ?? 0;
      const refused: string[] = [];
      for (const t of hosts) {
        if (t.id === vm.owner) continue;
        const no = t.cannotRun?.[vm.name] ?? refusal(vm, t, vms, used);
        if (no) {
          refused.push(`${name(t.id)}: ${no}`);
          continue;
        }
        const to = l.get(t.id)!;
        const after = imbalance(
          hosts.map((h) =>
            h.id === vm.owner
              ? score(h, { mem: from.mem - dm, cpu: from.cpu - dc })
              : h.id === t.id
                ? score(h, { mem: to.mem + dm, cpu: to.cpu + dc })
                : score(h),
          ),
        );
        if (
          !best ||
          after < best.after ||
          (after === best.after && vm.ha.priority < (vms.find((v) => v.name === best!.move.vm)?.ha.priority ?? 0))
        )
          best = {
            after,
            move: { vm: vm.name, from: vm.owner, to: t.id, epoch: vm.epoch + 1, why: '' },
          };
      }
      if (refused.length === hosts.length - 1)
        held.push({ vm: vm.name, why: `no host can take it (${refused.join('; ') || 'no other live host'})` });
    }
    const report = (proposal: Move | null, why: string): BalanceReport => ({
      imbalance: now,
      loads: Object.fromEntries(hosts.map((h) => [h.id, round3(score(h))])),
      proposal,
      after: proposal && best ? best.after : null,
      why,
      held,
    });
    if (now <= o.threshold && !overLimit.length) {
      this.aboveSince = null;
      return report(null, `imbalance ${round3(now)} ≤ threshold ${o.threshold}`);
    }
    this.aboveSince ??= nowMs;
    if (!overLimit.length && nowMs - this.aboveSince < o.holdMs)
      return report(
        null,
        `imbalance ${round3(now)} above ${o.threshold} for ${(nowMs - this.aboveSince) / 1000} s of ${o.holdMs / 1000} s`,
      );
    if (!best) return report(null, `imbalance ${round3(now)}, but no HA VM can move (cooldown, room or anti-affinity)`);
    const gain = (now - best.after) / now;
    const shed = overLimit.find((h) => h.id === best.move.from);
    if (!shed && gain < o.minGain)
      return report(
        null,
        `the best move (${best.move.vm} → ${name(best.move.to)}) cuts the imbalance by ${pct(gain)}, under ${pct(o.minGain)}`,
      );
    best.move.why = shed
      ? `${name(shed.id)} uses over ${pct(o.hardMemLimit)} of its memory`
      : `imbalance ${round3(now)} → ${round3(best.after)} (−${pct(gain)}), above ${o.threshold} for ${(nowMs - this.aboveSince) / 1000} s`;
    return report(best.move, best.move.why);
  }
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
const pct = (x: number) => `${Math.round(x * 100)} %`;
