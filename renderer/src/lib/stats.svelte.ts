// Live resource figures. The host pushes one sample per running VM every 2 s (event "stats");
// each VM keeps its own reactive series, so a push re-renders only what shows that VM (a list
// row, its page) and never the whole list. vm.stats fills the last hour when a VM's page
// opens, so charts do not start empty.
import type { VmStats } from '../../../electron/core/api/contract';
import { isLive } from '../../../electron/core/api/rules';
import type { ApiClient } from './api';
import type { Host } from './host.svelte';

/** The samples a VM keeps: an hour of 2 s samples. */
const KEEP_MS = 3600_000;
const KEEP_MAX = 1900;

export class VmSeries {
  /** Oldest first, at most an hour; replaced (never mutated) on every sample. */
  samples = $state.raw<VmStats[]>([]);
  /** The last sample while the VM runs; null once it stops reporting. */
  latest = $state.raw<VmStats | null>(null);
  #prefill: Promise<void> | null = null;
  #api: ApiClient;
  #vmId: string;

  constructor(api: ApiClient, vmId: string) {
    this.#api = api;
    this.#vmId = vmId;
  }

  push(s: VmStats): void {
    const from = s.at - KEEP_MS;
    const prev = this.samples;
    let i = 0;
    while (i < prev.length && prev[i].at < from) i++;
    const next = i ? prev.slice(i) : prev.slice();
    if (next.length && next[next.length - 1].at >= s.at) return; // a replayed or older sample
    next.push(s);
    if (next.length > KEEP_MAX) next.splice(0, next.length - KEEP_MAX);
    this.samples = next;
    this.latest = s;
  }

  /** Merges the host's last hour under what arrived live. */
  prefill(): Promise<void> {
    this.#prefill ??= this.#api
      .call('vm.stats', { vm: this.#vmId, range: 'hour' })
      .then((past) => {
        const have = this.samples;
        const first = have[0]?.at ?? Infinity;
        const merged = [...past.filter((s) => s.at < first), ...have];
        if (merged.length !== have.length) this.samples = merged.slice(-KEEP_MAX);
      })
      .catch(() => {
        // figures are a nicety: a VM that never ran, or an older host, just shows none
      })
      .finally(() => {
        // calls at the same time share one request; a later visit asks again
        this.#prefill = null;
      });
    return this.#prefill;
  }
}

export class Stats {
  // plain Map: only each VmSeries is reactive, so adding one re-renders nothing else
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  #byVm = new Map<string, VmSeries>();
  #api: ApiClient;

  /** The host's figures come with every push: they go to `host`. */
  constructor(api: ApiClient, host: Host) {
    this.#api = api;
    api.on('stats', ({ vms, host: res }) => {
      host.setResources(res);
      const seen: Record<string, true> = {};
      for (const s of vms) {
        seen[s.vmId] = true;
        this.of(s.vmId).push(s);
      }
      // a VM that no longer reports is not running: its last figures are stale
      for (const [id, series] of this.#byVm) if (!seen[id] && series.latest) series.latest = null;
    });
    api.on('vm.changed', (vm) => {
      if (!isLive(vm.state)) {
        const s = this.#byVm.get(vm.id);
        if (s?.latest) s.latest = null;
      }
    });
    api.on('vm.removed', ({ id }) => this.#byVm.delete(id));
  }

  /** The series of one VM (created on first use). */
  of(vmId: string): VmSeries {
    let s = this.#byVm.get(vmId);
    if (!s) this.#byVm.set(vmId, (s = new VmSeries(this.#api, vmId)));
    return s;
  }

  series(vmId: string): VmStats[] {
    return this.of(vmId).samples;
  }

  latest(vmId: string): VmStats | null {
    return this.of(vmId).latest;
  }

  prefill(vmId: string): Promise<void> {
    return this.of(vmId).prefill();
  }

  /** A VM's history from the host: the last hour (2 s) or the last day (per minute). */
  async history(vmId: string, range: 'hour' | 'day'): Promise<VmStats[]> {
    return this.#api.call('vm.stats', { vm: vmId, range });
  }
}
