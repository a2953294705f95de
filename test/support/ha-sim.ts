// A small cluster on a fake clock for the HA scenario tests: etcd's leases and ownership records,
// hosts that freeze, lose their link or die, and on each host the real LeaseKeeper and Fencer;
// the leader runs the real HaLeader and Balancer. Every step checks the one invariant that
// matters: no VM runs on two hosts at once.
import { HaLeader } from '../../electron/core/ha/decisions/leader';
import { Balancer } from '../../electron/core/ha/decisions/balance';
import { HA_DEFAULTS, type HaSettings, type HaVm, type HostView } from '../../electron/core/ha/decisions/model';
import { startRefusal, type Ownership } from '../../electron/core/ha/decisions/ownership';
import { Fencer } from '../../electron/core/ha/fencer/fencer';
import type { FenceRecord, Guard } from '../../electron/core/ha/fencer/protocol';
import { LeaseKeeper, type LeaseApi } from '../../electron/core/ha/lease-keeper';
import { FakeClock } from './fake-clock';
import { formatTime } from './scenario-time';

type HostState = 'up' | 'frozen' | 'partitioned' | 'dead';

export interface SimHostSpec {
  id: string;
  memMiB: number;
  cpus: number;
}

export interface SimVmSpec {
  name: string;
  owner: string;
  memMiB: number;
  cpus: number;
  ha: HaSettings;
}

interface SimHost extends SimHostSpec {
  state: HostState;
  keeper: LeaseKeeper | null;
  leaseId: string | null;
  fencer: Fencer | null;
  fence: FenceRecord | null;
  running: Set<string>;
  /** HA VMs it ran before a fence or a crash: what its supervisor would start again. */
  lost: Set<string>;
  /** Timers of the host process that came due while it was frozen: they run at the thaw. */
  frozenQueue: Array<() => void>;
  memUsedMiB?: number;
  cpuUsed?: number;
}

const never = <T>() => new Promise<T>(() => undefined);

export class HaSim {
  readonly clock = new FakeClock();
  readonly log: string[] = [];
  private readonly hosts = new Map<string, SimHost>();
  private readonly vms = new Map<string, SimVmSpec & { memUsedMiB?: number; cpuUsed?: number }>();
  private readonly leases = new Map<string, { host: string; expiresAt: number }>();
  private readonly owners = new Map<string, Ownership>();
  private nextLease = 1;
  private readonly leader = new HaLeader();
  private readonly balancer = new Balancer({
    threshold: 0.3,
    holdMs: 30_000,
    cooldownMs: 5 * 60_000,
    minGain: 0.1,
    hardMemLimit: 0.95,
    memWeight: 0.7,
  });
  private balancing = false;
  private lastBalanceMs = 0;

  constructor(
    hosts: SimHostSpec[],
    vms: SimVmSpec[],
    private readonly ttlSec = 10,
    private readonly marginMs = 2000,
  ) {
    for (const h of hosts)
      this.hosts.set(h.id, {
        ...h,
        state: 'up',
        keeper: null,
        leaseId: null,
        fencer: null,
        fence: null,
        running: new Set(),
        lost: new Set(),
        frozenQueue: [],
      });
    for (const v of vms) {
      this.vms.set(v.name, v);
      this.owners.set(v.name, { owner: v.owner, epoch: 1 });
      this.hosts.get(v.owner)!.running.add(v.name);
    }
  }

  private say(text: string): void {
    this.log.push(`+${formatTime(this.clock.now())} ${text}`);
  }

  async start(): Promise<void> {
    for (const h of this.hosts.values()) await this.join(h, true);
    this.tickEtcd();
    this.tickLeader();
  }

  // ---- etcd --------------------------------------------------------------------------------

  private reachable(h: SimHost): boolean {
    return h.state === 'up' || h.state === 'frozen';
  }

  /** etcd checks expiries twice a second, as the real one does. */
  private tickEtcd(): void {
    this.clock.after(500, () => {
      for (const [id, l] of this.leases)
        if (l.expiresAt <= this.clock.now()) {
          this.leases.delete(id);
          this.say(`etcd: lease of ${l.host} expired`);
        }
      this.tickEtcd();
    });
  }

  private leaseApi(h: SimHost): LeaseApi {
    let id: string | null = null;
    return {
      grant: async () => {
        if (!this.reachable(h)) return never();
        id = String(this.nextLease++);
        this.leases.set(id, { host: h.id, expiresAt: this.clock.now() + this.ttlSec * 1000 });
        return id;
      },
      keepalive: async () => {
        if (!this.reachable(h)) return never();
        const l = id ? this.leases.get(id) : undefined;
        if (!l) return 0;
        l.expiresAt = this.clock.now() + this.ttlSec * 1000;
        return this.ttlSec;
      },
      revoke: async () => void (id && this.leases.delete(id)),
    };
  }

  private aliveHosts(): Set<string> {
    return new Set([...this.leases.values()].map((l) => l.host));
  }

  // ---- a host ------------------------------------------------------------------------------

  /** The host process's timers: held while it is frozen, gone when it is dead. */
  private hostTimer(h: SimHost) {
    return {
      nowMs: () => this.clock.now(),
      after: (ms: number, fn: () => void) =>
        this.clock.after(ms, () => {
          if (h.state === 'dead') return;
          if (h.state === 'frozen') h.frozenQueue.push(fn);
          else fn();
        }),
    };
  }

  private guards(h: SimHost): Guard[] {
    return [...h.running]
      .filter((v) => this.vms.get(v)!.ha.enabled)
      .map((vm) => ({ vm, pid: 1000 + [...this.vms.keys()].indexOf(vm), startTime: vm }));
  }

  private async join(h: SimHost, quiet = false): Promise<void> {
    // the fencer finds a QEMU by pid and start time; here the VM's name stands for the start time
    h.fencer ??= new Fencer({
      nowMs: () => this.clock.now(),
      after: (ms, fn) => this.clock.after(ms, () => h.state !== 'dead' && fn()),
      startTime: (pid) => this.guards(h).find((g) => g.pid === pid)?.startTime ?? null,
      kill: (pid) => {
        const vm = this.guards(h).find((g) => g.pid === pid)!.vm;
        h.running.delete(vm);
        h.lost.add(vm);
      },
      record: (rec) => {
        h.fence = rec;
        this.say(
          `${h.id}: fencer killed ${rec.killed.map((g) => g.vm).join(', ') || 'nothing'} (${formatTime(rec.firedMs - rec.deadlineMs)} after its deadline)`,
        );
      },
      clearRecord: () => (h.fence = null),
      log: () => undefined,
    });
    const fencer = h.fencer;
    const keeper = new LeaseKeeper(() => this.leaseApi(h), {
      ttlSec: this.ttlSec,
      marginMs: this.marginMs,
      timers: this.hostTimer(h),
      onDeadline: (d) => fencer.handle({ op: 'arm', deadlineMs: d, guards: this.guards(h) }),
      onLost: (why) => {
        this.say(`${h.id}: lease lost (${why.replace(/:.*/, '')})`);
        void this.rejoin(h);
      },
    });
    h.keeper = keeper;
    h.leaseId = await keeper.start();
    if (h.fence) {
      fencer.handle({ op: 'clear-fence' });
      this.say(`${h.id}: rejoined with a fresh lease; fence cleared`);
    } else if (!quiet) this.say(`${h.id}: joined with a fresh lease`);
    this.resume(h);
  }

  private async rejoin(h: SimHost): Promise<void> {
    if (h.state !== 'up') return;
    await this.join(h);
  }

  /** A host with a lease again looks at the HA VMs it ran: it starts only what it still owns. */
  private resume(h: SimHost): void {
    for (const name of h.lost) {
      h.lost.delete(name);
      const why = startRefusal(h.id, this.owners.get(name) ?? null);
      this.say(why ? `${h.id}: does not start ${name}: ${why}` : `${h.id}: starts ${name}`);
      if (!why) h.running.add(name);
    }
  }

  // ---- the leader --------------------------------------------------------------------------

  private leaderHost(): SimHost | null {
    const alive = this.aliveHosts();
    return [...this.hosts.values()].filter((h) => h.state === 'up' && alive.has(h.id)).sort((a, b) => a.id.localeCompare(b.id))[0] ?? null;
  }

  private view(): { hosts: HostView[]; vms: HaVm[] } {
    const alive = this.aliveHosts();
    const hosts = [...this.hosts.values()].map((h) => ({
      id: h.id,
      alive: alive.has(h.id),
      memMiB: h.memMiB,
      cpus: h.cpus,
      memUsedMiB: h.memUsedMiB,
      cpuUsed: h.cpuUsed,
    }));
    const vms = [...this.vms.values()].map((v) => ({ ...v, owner: this.owners.get(v.name)!.owner, epoch: this.owners.get(v.name)!.epoch }));
    return { hosts, vms };
  }

  private tickLeader(): void {
    this.clock.after(1000, () => {
      const leader = this.leaderHost();
      if (leader) this.leaderRound(leader);
      this.tickLeader();
    });
  }

  private leaderRound(leader: SimHost): void {
    const { hosts, vms } = this.view();
    const round = this.leader.round(this.clock.now(), hosts, vms);
    for (const h of round.expired) this.say(`leader ${leader.id}: ${h} lost its lease`);
    for (const s of round.plan.stranded) this.say(`leader ${leader.id}: ${s.vm} stays on ${s.from}: ${s.why}`);
    for (const m of round.plan.moves) {
      if (!this.move(m.vm, m.epoch - 1, m.to)) {
        this.leader.failed(m.vm);
        continue;
      }
      this.say(`leader ${leader.id}: ${m.vm} → ${m.to} (epoch ${m.epoch}): ${m.why}`);
      this.order(m.vm, m.to, m.epoch);
    }
    if (this.balancing && this.clock.now() - this.lastBalanceMs >= 10_000) {
      this.lastBalanceMs = this.clock.now();
      const r = this.balancer.round(this.clock.now(), hosts, vms);
      if (r.proposal && this.move(r.proposal.vm, r.proposal.epoch - 1, r.proposal.to)) {
        const p = r.proposal;
        this.say(`leader ${leader.id}: migrate ${p.vm} ${p.from} → ${p.to} (epoch ${p.epoch}): ${p.why}`);
        this.hosts.get(p.from)!.running.delete(p.vm);
        this.hosts.get(p.to)!.running.add(p.vm);
        this.shiftLoad(p.vm, p.from, p.to);
        this.balancer.moved(p.vm, this.clock.now());
      }
    }
  }

  /** The ownership transaction: only if the record is still at `fromEpoch`. */
  private move(vm: string, fromEpoch: number, to: string): boolean {
    const rec = this.owners.get(vm)!;
    if (rec.epoch !== fromEpoch) return false;
    this.owners.set(vm, { owner: to, epoch: fromEpoch + 1 });
    return true;
  }

  /** The target starts the VM only after reading itself as owner at that epoch. */
  private order(vm: string, to: string, epoch: number): void {
    const h = this.hosts.get(to)!;
    if (h.state !== 'up') return;
    const why = startRefusal(to, this.owners.get(vm) ?? null, epoch);
    if (why) return this.say(`${to}: does not start ${vm}: ${why}`);
    h.running.add(vm);
    this.leader.settled(vm);
    h.fencer?.handle({ op: 'arm', deadlineMs: h.keeper!.deadlineMs!, guards: this.guards(h) });
    this.say(`${to}: started ${vm} (epoch ${epoch})`);
  }

  private shiftLoad(vm: string, from: string, to: string): void {
    const v = this.vms.get(vm)!;
    const f = this.hosts.get(from)!;
    const t = this.hosts.get(to)!;
    const dm = v.memUsedMiB ?? v.memMiB;
    const dc = v.cpuUsed ?? 0;
    if (f.memUsedMiB !== undefined) f.memUsedMiB -= dm;
    if (f.cpuUsed !== undefined) f.cpuUsed -= dc;
    if (t.memUsedMiB !== undefined) t.memUsedMiB += dm;
    if (t.cpuUsed !== undefined) t.cpuUsed += dc;
  }

  // ---- what a scenario does ----------------------------------------------------------------

  async act(verb: string, args: string[]): Promise<void> {
    const h = this.hosts.get(args[0] ?? '');
    const need = () => {
      if (!h) throw new Error(`${verb}: no host ${args[0]}`);
      return h;
    };
    switch (verb) {
      case 'freeze':
        need().state = 'frozen';
        return this.say(`${h!.id}: host process frozen`);
      case 'thaw': {
        need().state = 'up';
        this.say(`${h!.id}: host process thawed`);
        for (const fn of h!.frozenQueue.splice(0)) fn();
        return;
      }
      case 'partition':
        need().state = 'partitioned';
        return this.say(`${h!.id}: cut off from the cluster`);
      case 'heal':
        need().state = 'up';
        return this.say(`${h!.id}: link back`);
      case 'die': {
        const x = need();
        x.state = 'dead';
        for (const v of x.running) x.lost.add(v);
        x.running.clear();
        x.fencer = null;
        x.fence = null;
        void x.keeper?.stop();
        return this.say(`${x.id}: machine died`);
      }
      case 'boot': {
        const x = need();
        x.state = 'up';
        this.say(`${x.id}: machine booted`);
        return this.join(x);
      }
      case 'load': {
        const x = need();
        for (const kv of args.slice(1)) {
          const [k, v] = kv.split('=');
          if (k === 'mem') x.memUsedMiB = Number(v);
          else if (k === 'cpu') x.cpuUsed = Number(v);
          else throw new Error(`load: unknown ${kv}`);
        }
        return;
      }
      case 'balance':
        this.balancing = args[0] === 'on';
        return this.say(`balancing ${this.balancing ? 'on' : 'off'}`);
      case 'wait':
        return;
      default:
        throw new Error(`unknown action ${verb}`);
    }
  }

  /** Runs to `ms`, checking after every step that no VM runs twice. */
  async advanceTo(ms: number): Promise<void> {
    for (let t = this.clock.now() + 100; t <= ms; t += 100) {
      await this.clock.advanceTo(t);
      for (const name of this.vms.keys()) {
        const on = [...this.hosts.values()].filter((h) => h.running.has(name)).map((h) => h.id);
        if (on.length > 1) this.say(`INVARIANT BROKEN: ${name} runs on ${on.join(' and ')}`);
      }
    }
  }

  get summary(): string {
    return [...this.vms.keys()]
      .map((v) => {
        const o = this.owners.get(v)!;
        const on = [...this.hosts.values()].filter((h) => h.running.has(v)).map((h) => h.id);
        return `${v}: owner ${o.owner} epoch ${o.epoch}, runs on ${on.join(',') || 'nothing'}`;
      })
      .join('; ');
  }
}

export function vmSpec(name: string, opts: string[]): SimVmSpec {
  const v: SimVmSpec = { name, owner: '', memMiB: 1024, cpus: 1, ha: { ...HA_DEFAULTS, enabled: true } };
  for (const o of opts) {
    const [k, val = ''] = o.split('=');
    if (k === 'on') v.owner = val;
    else if (k === 'mem') v.memMiB = Number(val);
    else if (k === 'cpus') v.cpus = Number(val);
    else if (k === 'prio') v.ha.priority = Number(val);
    else if (k === 'group') v.ha.group = val;
    else if (k === 'hosts') v.ha.hosts = val.split(',');
    else if (k === 'ha') v.ha.enabled = val === 'on';
    else throw new Error(`vm ${name}: unknown option ${o}`);
  }
  if (!v.owner) throw new Error(`vm ${name}: on=HOST is required`);
  return v;
}
