// Live resource figures: the host pushes a sample per running VM every 2 s (event "stats");
// the last few minutes are kept per VM for the sparklines. vm.stats fills the history when a
// VM's page opens, so the chart is not empty at first.
import type { HostResources, VmStats } from '../../../electron/core/api/contract';
import { api } from './api';

/** 5 minutes of 2 s samples. */
const KEEP = 150;

class Stats {
  #series = $state<Record<string, VmStats[]>>({});
  host = $state.raw<HostResources | null>(null);

  constructor() {
    api.on('stats', ({ vms, host }) => {
      this.host = host;
      const next = { ...this.#series };
      const seen: Record<string, true> = {};
      for (const s of vms) {
        seen[s.vmId] = true;
        next[s.vmId] = [...(next[s.vmId] ?? []), s].slice(-KEEP);
      }
      // a VM that no longer reports is not running: its figures are stale
      for (const id of Object.keys(next)) if (!seen[id]) delete next[id];
      this.#series = next;
    });
  }

  series(vmId: string): VmStats[] {
    return this.#series[vmId] ?? [];
  }

  latest(vmId: string): VmStats | null {
    return this.#series[vmId]?.at(-1) ?? null;
  }

  /** Fills the recent history of one VM (once, when its page opens). */
  async prefill(vmId: string): Promise<void> {
    try {
      const past = await api.call('vm.stats', { vm: vmId, range: 'hour' });
      const have = this.#series[vmId] ?? [];
      const first = have[0]?.at ?? Infinity;
      const merged = [...past.filter((s) => s.at < first), ...have].slice(-KEEP);
      if (merged.length) this.#series = { ...this.#series, [vmId]: merged };
    } catch {
      // figures are a nicety: a VM that never ran, or an older host, just shows none
    }
  }
}

export const stats = new Stats();
