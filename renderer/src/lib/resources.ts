// The Resources tab's logic, kept out of the component: slider stops, the form and its diff
// against the VM, which changes a running VM takes at once, and chart columns from samples.
import type { ArgsIn, DiskConfig, VmInfo, VmStats } from '../../../electron/core/api/contract';
import { LIMITS as RULES } from '../../../electron/core/api/rules';
import { formatSize, MiB } from '../../../electron/core/api/units';

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

const LIVE_STATES = new Set(['running', 'paused']);

export const LIMITS = {
  cpus: [RULES.cpus.min, RULES.cpus.max],
  memoryMiB: [RULES.memoryMiB.min, RULES.memoryMiB.max],
  cpuWeight: [1, 10000],
  cpuCapPercent: [RULES.cpuCapPercent.min, RULES.cpuCapPercent.max],
  ioBps: [4096, 2 ** 40],
  ioIops: [1, 10_000_000],
} as const;

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
  const running = LIVE_STATES.has(vm.state);
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

/** Client-side checks (the host checks again); keys are the contract's argument names. */
export function validate(f: ResForm): Partial<Record<ResKey, string>> {
  const e: Partial<Record<ResKey, string>> = {};
  const whole = (v: number) => Number.isInteger(v);
  const range = (k: ResKey, v: number | null, [lo, hi]: readonly [number, number], what: string) => {
    if (v === null) return;
    if (!Number.isFinite(v) || !whole(v)) e[k] = `Enter a whole number of ${what}`;
    else if (v < lo || v > hi) e[k] = `From ${lo} to ${hi} ${what}`;
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
  if (f.ioBps !== null && (!Number.isFinite(f.ioBps) || f.ioBps < LIMITS.ioBps[0])) e.ioBps = 'At least 4 KiB/s';
  else if (f.ioBps !== null && f.ioBps > LIMITS.ioBps[1]) e.ioBps = 'At most 1 TiB/s';
  range('ioIops', f.ioIops, LIMITS.ioIops, 'operations/s');
  for (const k of Object.keys(e) as ResKey[]) e[k] = e[k]!.replace(/\s+$/, '');
  return e;
}

/** What the running QEMU booted with, as far as VmInfo tells (null: a pending change hides it). */
export function bootFigures(vm: VmInfo): { memoryMiB: number | null; maxCpus: number | null; cpus: number | null } {
  const c = vm.config;
  const p = new Set(vm.pending);
  return {
    memoryMiB: p.has('memoryMiB') || p.has('maxMemoryMiB') ? null : Math.max(c.memoryMiB, c.maxMemoryMiB ?? 0),
    maxCpus: p.has('cpus') || p.has('maxCpus') ? null : Math.max(c.cpus, c.maxCpus ?? 0),
    cpus: p.has('cpus') ? null : c.cpus,
  };
}

/**
 * Whether the form's value of `key` would reach the running VM at once ('live') or wait for
 * its next boot ('boot'); null when it is not running (everything applies at the next start).
 * Mirrors the host's rules; the host's answer (VmInfo.pending) is what the UI shows after.
 */
export function predict(vm: VmInfo, f: ResForm, key: ResKey, cgroups: boolean): 'live' | 'boot' | null {
  if (!LIVE_STATES.has(vm.state)) return null;
  const boot = bootFigures(vm);
  switch (key) {
    case 'memoryMiB':
      return boot.memoryMiB !== null
        ? f.memoryMiB <= boot.memoryMiB
          ? 'live'
          : 'boot'
        : f.memoryMiB <= vm.config.memoryMiB
          ? 'live'
          : 'boot';
    case 'cpus':
      if (boot.cpus !== null && f.cpus < boot.cpus) return 'boot';
      return boot.maxCpus !== null && f.cpus <= boot.maxCpus ? 'live' : 'boot';
    case 'maxCpus':
    case 'maxMemoryMiB':
      return 'boot';
    case 'cpuWeight':
    case 'cpuCapPercent':
      return cgroups ? 'live' : 'boot';
    case 'ioBps':
    case 'ioIops':
      return 'live';
  }
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
 * A disk's current virtual size when the host tells it. The contract has no size in
 * DiskConfig yet; this reads `sizeBytes` if a host sends it.
 */
export function diskSize(d: DiskConfig): number | null {
  const s = (d as DiskConfig & { sizeBytes?: unknown }).sizeBytes;
  return typeof s === 'number' && s > 0 ? s : null;
}

/** "disks only grow; disk 0 is already 1073741824 bytes" → the size, when the host names it. */
export function sizeFromError(message: string): number | null {
  const m = /already (\d+) bytes/.exec(message);
  return m ? Number(m[1]) : null;
}

/** The host's wording without the argument prefix, and byte counts in human units. */
export function tidyError(message: string): string {
  const s = message.replace(/^invalid argument "[^"]*": /, '').replace(/(\d{5,}) bytes/g, (_m, n: string) => formatSize(Number(n)));
  return s.charAt(0).toUpperCase() + s.slice(1);
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
