// The cluster this host is in, as the page shows it: its hosts with their room and health (from
// cluster.status), asked again on each (re)connection, every few seconds while the window is
// open, and soon after a VM starts or stops (which changes a host's room). A single host gets
// `clustered: false` once and the page stays as it always was.
import type { ClusterHost, ClusterStatus, VmInfo } from '../../../electron/core/api/contract';
import type { ApiClient } from './api';

const EVERY_MS = 5000;

export interface HostGroup {
  host: ClusterHost;
  vms: VmInfo[];
}

export class ClusterStore {
  status = $state.raw<ClusterStatus | null>(null);
  #api: ApiClient;
  #timer: ReturnType<typeof setInterval> | null = null;
  #soon: ReturnType<typeof setTimeout> | null = null;

  constructor(api: ApiClient) {
    this.#api = api;
    api.onConnect(() => void this.refresh());
    api.on('vm.changed', () => this.#refreshSoon());
    api.on('vm.removed', () => this.#refreshSoon());
  }

  get clustered(): boolean {
    return this.status?.clustered === true;
  }

  /** Hosts reporting first is not wanted: the tree keeps a stable order, this host first, then by name. */
  get hosts(): ClusterHost[] {
    return [...(this.status?.hosts ?? [])].sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name));
  }

  /** The VMs of `list` under their hosts; a VM whose host is not in the status (it left) gets a group of its own. */
  groups(list: VmInfo[]): HostGroup[] {
    const self = this.status?.hosts.find((h) => h.self);
    // built afresh for each render, never kept: a plain Map
    // eslint-disable-next-line svelte/prefer-svelte-reactivity
    const out = new Map<string, HostGroup>(this.hosts.map((h) => [h.id, { host: h, vms: [] }]));
    for (const vm of list) {
      const id = vm.host?.id ?? self?.id ?? '';
      let g = out.get(id);
      if (!g) {
        const ref = vm.host ?? { id, name: id, reporting: false };
        g = { host: ghost(ref.id, ref.name), vms: [] };
        out.set(id, g);
      }
      g.vms.push(vm);
    }
    return [...out.values()];
  }

  async refresh(): Promise<void> {
    try {
      this.status = await this.#api.call('cluster.status', {});
    } catch (err) {
      console.warn('corral: cluster.status failed', err);
    }
    // only a clustered host is asked again: a single host's answer never changes by itself
    if (this.clustered && !this.#timer) this.#timer = setInterval(() => void this.refresh(), EVERY_MS);
    if (!this.clustered && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  #refreshSoon(): void {
    if (!this.clustered || this.#soon) return;
    this.#soon = setTimeout(() => {
      this.#soon = null;
      void this.refresh();
    }, 400);
  }
}

function ghost(id: string, name: string): ClusterHost {
  return {
    id,
    name,
    address: '',
    etcdRole: 'client',
    reporting: false,
    self: false,
    cpus: null,
    memoryBytes: null,
    committedBytes: null,
    vms: null,
    running: null,
    overcommit: null,
    availableBytes: null,
    cpuPercent: null,
    maintenance: false,
  };
}

/** What a host may still commit to VMs, or null when it publishes no figures. */
export function roomBytes(h: ClusterHost): number | null {
  if (h.memoryBytes === null || h.committedBytes === null) return null;
  return Math.floor(h.memoryBytes * (h.overcommit ?? 1)) - h.committedBytes;
}

export function limitBytes(h: ClusterHost): number | null {
  return h.memoryBytes === null ? null : Math.floor(h.memoryBytes * (h.overcommit ?? 1));
}
