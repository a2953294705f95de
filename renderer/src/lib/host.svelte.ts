// Facts about the host: QEMU, acceleration and settings (host.info, on every (re)connection),
// and its capacity (host.resources, then the figures that come with every "stats" push).
import type { HostInfo, HostResources, HostSettings } from '../../../electron/core/api/contract';
import { isLive, type HostAbilities } from '../../../electron/core/api/rules';
import type { ApiClient } from './api';

/** Committed memory above this share of the limit is "almost full" (the host warns at 90 % too). */
export const NEAR_LIMIT = 0.9;

export class Host {
  info = $state.raw<HostInfo | null>(null);
  resources = $state.raw<HostResources | null>(null);

  #lastPush = 0;
  #watchers = 0;
  #poll: ReturnType<typeof setInterval> | null = null;
  #soon: ReturnType<typeof setTimeout> | null = null;
  // bookkeeping, never rendered
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  #liveIds = new Set<string>();
  #api: ApiClient;

  constructor(api: ApiClient) {
    this.#api = api;
    api.onConnect(() => {
      void this.refreshInfo();
      void this.refreshResources();
    });
    // committed memory changes when a VM starts or stops: ask again (stats pushes stop with the last VM)
    api.on('vm.changed', (vm) => {
      const live = isLive(vm.state);
      if (live !== this.#liveIds.has(vm.id)) {
        if (live) this.#liveIds.add(vm.id);
        else this.#liveIds.delete(vm.id);
        this.#refreshSoon();
      }
    });
    api.on('vm.removed', ({ id }) => this.#liveIds.delete(id));
  }

  /** What the host can do besides QEMU (cgroup CPU controls), as the live rules take it. */
  get abilities(): HostAbilities {
    const c = this.resources?.cgroups;
    return { cgroups: c?.available ?? false, cgroupsReason: c?.reason ?? null };
  }

  async refreshInfo(): Promise<void> {
    try {
      this.info = await this.#api.call('host.info', {});
    } catch (err) {
      console.warn('corral: host.info failed', err);
    }
  }

  async refreshResources(): Promise<void> {
    try {
      this.setResources(await this.#api.call('host.resources', {}));
    } catch (err) {
      console.warn('corral: host.resources failed', err);
    }
  }

  /** From a "stats" push or a call. */
  setResources(r: HostResources): void {
    this.#lastPush = Date.now();
    this.resources = r;
  }

  /**
   * Keeps the figures fresh while something shows them (e.g. the host panel): pushes come
   * only while VMs run, so without them we ask every few seconds. Returns the stop function.
   */
  watch(): () => void {
    if (this.#watchers++ === 0) {
      void this.refreshResources();
      this.#poll = setInterval(() => {
        if (Date.now() - this.#lastPush > 3500 && document.visibilityState === 'visible') void this.refreshResources();
      }, 4000);
    }
    return () => {
      if (--this.#watchers === 0 && this.#poll) {
        clearInterval(this.#poll);
        this.#poll = null;
      }
    };
  }

  #refreshSoon(): void {
    if (this.#soon) clearTimeout(this.#soon);
    this.#soon = setTimeout(() => {
      this.#soon = null;
      void this.refreshResources();
    }, 300);
  }

  /** Changes host settings; rejects with the host's error. What the host allows may change with them. */
  async saveSettings(patch: Partial<HostSettings>): Promise<void> {
    const settings = await this.#api.call('host.settings', patch);
    if (this.info) this.info = { ...this.info, settings };
    await Promise.all([this.refreshInfo(), 'memoryOvercommit' in patch ? this.refreshResources() : null]);
  }
}
