// The Resources tab's logic, kept out of the component: slider stops, the form and its diff
// against the VM, which changes a running VM takes at once (the host's own rules, from
// api/rules, against what the VM booted with), and chart columns from samples.
import type { ArgsIn, NotLive, VmInfo, VmStats } from '../../../electron/core/api/contract';
import { bootedFrom, isRunning, LIMITS, liveBlocker, type Booted, type HostAbilities } from '../../../electron/core/api/rules';
import { formatSize, MiB } from '../../../electron/core/api/units';
import { reasonText } from './format';

export type ResKey = 'cpus' | 'maxCpus' | 'memoryMiB' | 'maxMemoryMiB' | 'cpuWeight' | 'cpuCapPercent' | 'ioBps' | 'ioIops';
export const RES_KEYS: readonly ResKey[] = [
  'cpus',
  'maxCpus',
  'memoryMiB',
  'maxMemoryMiB',
  'cpuWeight',
  'cpuCapPercent',
  'ioBps',
  'ioIops',
];

export interface ResForm {
  cpus: number;
  /** At least cpus (the config's null shows as cpus). */
  maxCpus: number;
  memoryMiB: number;
  /** At least memoryMiB (the config's null shows as memoryMiB). */
  maxMemoryMiB: number;
  cpuWeight: number | null;
  cpuCapPercent: number | null;
  ioBps: number | null;
  ioIops: number | null;
}

export function formFromConfig(vm: VmInfo): ResForm {
  const c = vm.config;
  return {
    cpus: c.cpus,
    maxCpus: Math.max(c.cpus, c.maxCpus ?? 0),
    memoryMiB: c.memoryMiB,
    maxMemoryMiB: Math.max(c.memoryMiB, c.maxMemoryMiB ?? 0),
    cpuWeight: c.cpuWeight,
    cpuCapPercent: c.cpuCapPercent,
    ioBps: c.ioBps,
    ioIops: c.ioIops,
  };
}

/**
 * The vm.update arguments for what the form changed (nothing else is sent). A maximum that
 * only followed its value up stays unset on a stopped VM (null: "the same as the value"); a
 * running VM gets it explicitly, since its running maximum is what it booted with.
 */
export function diffArgs(vm: VmInfo, f: ResForm): ArgsIn<'vm.update'> {
  const base = formFromConfig(vm);
  const running = isRunning(vm.state);
  const args: ArgsIn<'vm.update'> = { vm: vm.id };
  const followed = (max: number, v: number, baseMax: number, wasNull: boolean) => wasNull && !running && max === v && v > baseMax;
  if (f.cpus !== base.cpus) args.cpus = f.cpus;
  if (f.maxCpus !== base.maxCpus && !followed(f.maxCpus, f.cpus, base.maxCpus, vm.config.maxCpus === null)) args.maxCpus = f.maxCpus;
  if (f.memoryMiB !== base.memoryMiB) args.memoryMiB = f.memoryMiB;
  if (f.maxMemoryMiB !== base.maxMemoryMiB && !followed(f.maxMemoryMiB, f.memoryMiB, base.maxMemoryMiB, vm.config.maxMemoryMiB === null)) {
    args.maxMemoryMiB = f.maxMemoryMiB;
  }
  if (f.cpuWeight !== base.cpuWeight) args.cpuWeight = f.cpuWeight;
  if (f.cpuCapPercent !== base.cpuCapPercent) args.cpuCapPercent = f.cpuCapPercent;
  if (f.ioBps !== base.ioBps) args.ioBps = f.ioBps;
  if (f.ioIops !== base.ioIops) args.ioIops = f.ioIops;
  return args;
}

export function changedKeys(vm: VmInfo, f: ResForm): ResKey[] {
  const base = formFromConfig(vm);
  return RES_KEYS.filter((k) => f[k] !== base[k]);
}

type Range = { readonly min: number; readonly max: number };

/** Client-side checks against the contract's LIMITS (the host checks again); keys are the contract's argument names. */
export function validate(f: ResForm): Partial<Record<ResKey, string>> {
  const e: Partial<Record<ResKey, string>> = {};
  const range = (k: ResKey, v: number | null, { min, max }: Range, what: string) => {
    if (v === null) return;
    const unit = what ? ` ${what}` : '';
    if (!Number.isFinite(v) || !Number.isInteger(v)) e[k] = `Enter a whole number${what ? ` of ${what}` : ''}`;
    else if (v < min || v > max) e[k] = `From ${min} to ${max}${unit}`;
  };
  range('cpus', f.cpus, LIMITS.cpus, 'vCPUs');
  range('maxCpus', f.maxCpus, LIMITS.cpus, 'vCPUs');
  if (!e.maxCpus && !e.cpus && f.maxCpus < f.cpus) e.maxCpus = `At least the vCPUs (${f.cpus})`;
  range('memoryMiB', f.memoryMiB, LIMITS.memoryMiB, 'MiB');
  range('maxMemoryMiB', f.maxMemoryMiB, LIMITS.memoryMiB, 'MiB');
  if (!e.maxMemoryMiB && !e.memoryMiB && f.maxMemoryMiB < f.memoryMiB)
    e.maxMemoryMiB = `At least the memory (${formatSize(f.memoryMiB * MiB)})`;
  range('cpuWeight', f.cpuWeight, LIMITS.cpuWeight, '');
  range('cpuCapPercent', f.cpuCapPercent, LIMITS.cpuCapPercent, '%');
  if (f.ioBps !== null && (!Number.isFinite(f.ioBps) || f.ioBps < LIMITS.ioBps.min)) e.ioBps = `At least ${formatSize(LIMITS.ioBps.min)}/s`;
  else if (f.ioBps !== null && f.ioBps > LIMITS.ioBps.max) e.ioBps = `At most ${formatSize(LIMITS.ioBps.max)}/s`;
  range('ioIops', f.ioIops, LIMITS.ioIops, 'operations/s');
  return e;
}

/** What the running QEMU started with, as the host says (a host that does not say: the config). */
export function bootedOf(vm: VmInfo): Booted {
  return vm.booted ?? bootedFrom(vm.config);
}

/**
 * Why the form's value of `key` would not reach the running VM at once: the host's own rule
 * (liveBlocker) against what the VM booted with. Null when it would, or when it is not running
 * (then everything applies at its next start).
 */
export function blocker(vm: VmInfo, f: ResForm, key: ResKey, host: HostAbilities): string | null {
  if (!isRunning(vm.state)) return null;
  return liveBlocker(key, f, bootedOf(vm), host);
}

/**
 * Whether the form's value of `key` would reach the running VM at once ('live') or wait for
 * its next boot ('boot'); null when it is not running. The host's answer (vm.update's notLive,
 * VmInfo.pending) is what the UI shows after.
 */
export function predict(vm: VmInfo, f: ResForm, key: ResKey, host: HostAbilities): 'live' | 'boot' | null {
  if (!isRunning(vm.state)) return null;
  return blocker(vm, f, key, host) === null ? 'live' : 'boot';
}

/** Whether the running VM could take one more vCPU at once (hotplug room left). */
export function canAddCpuLive(vm: VmInfo, host: HostAbilities): boolean {
  if (!isRunning(vm.state)) return false;
  const b = bootedOf(vm);
  return liveBlocker('cpus', { cpus: b.cpus + 1, memoryMiB: vm.config.memoryMiB }, b, host) === null;
}

/**
 * The changes sent as live that the running VM did not take (vm.update's notLive names each,
 * with the host's reason): the message for each field.
 */
export function liveFailures(notLive: readonly NotLive[], expectedLive: readonly ResKey[]): Partial<Record<ResKey, string>> {
  const out: Partial<Record<ResKey, string>> = {};
  for (const n of notLive) {
    if ((expectedLive as readonly string[]).includes(n.field)) out[n.field as ResKey] = `Not applied live: ${n.why}`;
  }
  return out;
}

// ---- slider stops ----------------------------------------------------------------------

/** 64 MiB … top, at 1, 1.25, 1.5 and 1.75 × each power of two. */
export function memoryStops(topMiB: number): number[] {
  const out: number[] = [];
  for (let p = 64; p <= topMiB; p *= 2) {
    for (const m of [1, 1.25, 1.5, 1.75]) {
      const v = p * m;
      if (v <= topMiB) out.push(v);
    }
  }
  if (out[out.length - 1] !== topMiB) out.push(topMiB);
  return out;
}

export function countStops(top: number): number[] {
  return Array.from({ length: Math.max(1, top) }, (_, i) => i + 1);
}

/** 1, 2, 5 × 10^n within [lo, hi]. */
export function decadeStops(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let p = 1; p <= hi; p *= 10) for (const m of [1, 2, 5]) if (p * m >= lo && p * m <= hi) out.push(p * m);
  return out;
}

/** Percent of one core: fine steps up to one core, then quarter cores. */
export function capStops(hostCpus: number): number[] {
  const out = [5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 100];
  for (let v = 125; v <= 100 * Math.max(1, hostCpus); v += 25) out.push(v);
  return out;
}

/** Bytes/s: 1 MiB/s … 10 GiB/s in 1-2-5 steps. */
export function bpsStops(): number[] {
  return decadeStops(1, 10000).map((m) => m * MiB);
}

/** Merges a value that is not a stop into the stops (so the slider can show it exactly). */
export function withValue(stops: number[], v: number | null): number[] {
  if (v === null || stops.includes(v)) return stops;
  return [...stops, v].sort((a, b) => a - b);
}

// ---- disks -------------------------------------------------------------------------------

/**
 * A refused resize as the disk row shows it. A refusal that tells the disk's current size
 * (ApiError.current: it would shrink) says it in human units and hands the size back to show.
 */
export function growRefusal(err: unknown): { text: string; current: number | null } {
  const current = (err as { current?: unknown } | null)?.current;
  if (typeof current === 'number') return { text: `Disks only grow: it is already ${formatSize(current)}`, current };
  return { text: reasonText(err), current: null };
}

// ---- charts ------------------------------------------------------------------------------

export interface Columns {
  x: number[];
  cpu: Array<number | null>;
  rss: Array<number | null>;
  balloon: Array<number | null>;
  read: Array<number | null>;
  write: Array<number | null>;
}

/** Samples as chart columns; a pause longer than `gapMs` (the VM was down) becomes a gap. */
export function toColumns(samples: VmStats[], gapMs: number): Columns {
  const c: Columns = { x: [], cpu: [], rss: [], balloon: [], read: [], write: [] };
  let prev = -Infinity;
  for (const s of samples) {
    if (s.at - prev > gapMs && c.x.length) {
      c.x.push(prev + 1);
      c.cpu.push(null);
      c.rss.push(null);
      c.balloon.push(null);
      c.read.push(null);
      c.write.push(null);
    }
    c.x.push(s.at);
    c.cpu.push(s.cpuPercent);
    c.rss.push(s.rssBytes);
    c.balloon.push(s.balloonBytes);
    c.read.push(s.diskReadBps);
    c.write.push(s.diskWriteBps);
    prev = s.at;
  }
  return c;
}
