// What this host's guests use now, from the resource monitor's samples: the load a cluster's
// leader balances. A host's load is the sum of its guests' figures, so that moving a guest
// changes two hosts' loads by exactly that guest's figures and the leader's before/after
// arithmetic holds (whole-machine figures would also count what no move can shed).
import type { VmStats } from '../api/contract.js';

/** Memory (resident bytes of QEMU) and CPU (cores busy) of each running guest, and their sums. */
export interface GuestLoad {
  memBytes: number;
  cpu: number;
  vms: Record<string, { memBytes: number; cpu: number }>;
}

/** CPU is noisy from one 2 s sample to the next: the mean of this many samples counts. */
const CPU_SAMPLES = 5;

export class GuestLoadBook {
  private readonly last = new Map<string, { memBytes: number; cpu: number[] }>();

  /** One round of the monitor's samples (every running guest it could read). */
  add(samples: VmStats[]): void {
    for (const s of samples) {
      const e = this.last.get(s.vmId) ?? { memBytes: 0, cpu: [] };
      e.memBytes = s.rssBytes;
      e.cpu = [...e.cpu, s.cpuPercent / 100].slice(-CPU_SAMPLES);
      this.last.set(s.vmId, e);
    }
  }

  /** The load of the guests running now (`running`: their ids); a guest not sampled yet is left out. */
  now(running: string[]): GuestLoad {
    const keep = new Set(running);
    for (const id of this.last.keys()) if (!keep.has(id)) this.last.delete(id);
    const vms: GuestLoad['vms'] = {};
    let memBytes = 0;
    let cpu = 0;
    for (const [id, e] of this.last) {
      const c = Math.round((e.cpu.reduce((a, b) => a + b, 0) / Math.max(1, e.cpu.length)) * 100) / 100;
      vms[id] = { memBytes: e.memBytes, cpu: c };
      memBytes += e.memBytes;
      cpu += c;
    }
    return { memBytes, cpu: Math.round(cpu * 100) / 100, vms };
  }
}
