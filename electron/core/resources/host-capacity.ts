// What the host has and what running VMs have committed of it. Admission refuses a start
// that would commit more memory than host RAM x the overcommit ratio, naming the numbers.
import fs from 'node:fs';
import os from 'node:os';
import { formatSize } from '../api/units.js';

export interface HostMemory {
  totalBytes: number;
  availableBytes: number;
}

export function readHostMemory(meminfo = '/proc/meminfo'): HostMemory {
  const text = fs.readFileSync(meminfo, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { totalBytes: kb('MemTotal'), availableBytes: kb('MemAvailable') };
}

export function hostCpuCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Busy share of all cores between two readings of /proc/stat. */
export class HostCpu {
  private last: { busy: number; total: number } | null = null;

  sample(stat = '/proc/stat'): number {
    const line = fs.readFileSync(stat, 'utf8').split('\n', 1)[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.reduce((a, b) => a + b, 0);
    const prev = this.last;
    this.last = { busy: total - idle, total };
    if (!prev || total === prev.total) return 0;
    return ((total - idle - prev.busy) / (total - prev.total)) * 100;
  }
}

export interface Admission {
  ok: boolean;
  /** Set when refused, or when the start brings commitment above 90 % of the limit. */
  message: string | null;
}

export function admit(vmName: string, wantBytes: number, committedBytes: number, hostBytes: number, overcommit: number): Admission {
  const limit = Math.floor(hostBytes * overcommit);
  const after = committedBytes + wantBytes;
  const figures = `${formatSize(wantBytes)} for "${vmName}" + ${formatSize(committedBytes)} already committed = ${formatSize(after)}, limit ${formatSize(limit)} (host RAM ${formatSize(hostBytes)} × overcommit ${overcommit})`;
  if (after > limit)
    return {
      ok: false,
      message: `not enough memory to start "${vmName}": ${figures}. Stop a VM, give this one less memory, or raise the overcommit setting.`,
    };
  if (after > limit * 0.9) return { ok: true, message: `memory almost fully committed: ${figures}` };
  return { ok: true, message: null };
}
