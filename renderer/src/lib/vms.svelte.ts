// All VMs, kept current by the host's pushed events (vm.changed / vm.removed): loaded once
// per connection, never polled.
import type { VmInfo } from '../../../electron/core/api/contract';
import type { VmAction } from '../../../electron/core/api/rules';
import type { ApiClient } from './api';
import { toasts } from './toasts.svelte';

/** The actions that are a call of their own (vm.start, vm.stop, …): all but edit and delete. */
export type PowerAction = Exclude<VmAction, 'edit' | 'delete'>;

const SELECTED_KEY = 'corral.selectedVm';

type Change = { kind: 'changed'; vm: VmInfo } | { kind: 'removed'; id: string };

/** True when `b` is not older than `a` (call results can arrive after a newer event). */
function notOlder(a: VmInfo, b: VmInfo): boolean {
  return b.stateSince >= a.stateSince && b.configVersion >= a.configVersion;
}

function byName(a: VmInfo, b: VmInfo): number {
  return a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: 'base' }) || a.id.localeCompare(b.id);
}

export class VmStore {
  byId = $state.raw<Record<string, VmInfo>>({});
  /** First load of this connection done. */
  loaded = $state(false);
  loadError = $state<string | null>(null);
  /** Action in flight per VM id (shows a spinner on that button; never blocks the UI). */
  busy = $state<Record<string, PowerAction | undefined>>({});
  selectedId = $state<string | null>(sessionStorage.getItem(SELECTED_KEY));

  list = $derived(Object.values(this.byId).sort(byName));
  selected = $derived.by(() => {
    const id = this.selectedId;
    if (id && this.byId[id]) return this.byId[id];
    return this.list[0] ?? null;
  });

  /** Changes that arrived while a vm.list was in flight, replayed over its answer. */
  #replay: Change[] | null = null;
  #tokens: Record<string, number> = {};
  #api: ApiClient;

  constructor(api: ApiClient) {
    this.#api = api;
    api.on('vm.changed', (vm) => this.#apply({ kind: 'changed', vm }));
    api.on('vm.removed', ({ id }) => this.#apply({ kind: 'removed', id }));
    api.onConnect(() => void this.reload());
  }

  async reload(): Promise<void> {
    this.#replay = [];
    try {
      await this.#api.call('events.subscribe', {});
      const list = await this.#api.call('vm.list', {});
      const next: Record<string, VmInfo> = {};
      for (const vm of list) next[vm.id] = vm;
      for (const c of this.#replay ?? []) {
        if (c.kind === 'changed') next[c.vm.id] = c.vm;
        else delete next[c.id];
      }
      this.byId = next;
      this.loaded = true;
      this.loadError = null;
    } catch (err) {
      this.loadError = err instanceof Error ? err.message : String(err);
    } finally {
      this.#replay = null;
    }
  }

  #apply(c: Change): void {
    this.#replay?.push(c);
    if (c.kind === 'changed') {
      this.byId = { ...this.byId, [c.vm.id]: c.vm };
    } else if (this.byId[c.id]) {
      const next = { ...this.byId };
      delete next[c.id];
      this.byId = next;
    }
  }

  /** Applies a method's VmInfo result unless an event already brought something newer. */
  applyResult(vm: VmInfo): void {
    const cur = this.byId[vm.id];
    if (!cur || notOlder(cur, vm)) this.byId = { ...this.byId, [vm.id]: vm };
  }

  select(id: string | null): void {
    this.selectedId = id;
    if (id) sessionStorage.setItem(SELECTED_KEY, id);
    else sessionStorage.removeItem(SELECTED_KEY);
  }

  /**
   * Runs a power action without blocking: the state badge follows vm.changed events, the
   * button shows a spinner meanwhile, and a failure becomes a toast.
   */
  async act(vm: VmInfo, action: PowerAction): Promise<void> {
    // one action at a time per VM, except that "force off" may always interrupt (a hung stop)
    if (this.busy[vm.id] && action !== 'kill') return;
    this.busy[vm.id] = action;
    const token = (this.#tokens[vm.id] = (this.#tokens[vm.id] ?? 0) + 1);
    try {
      const res = await this.#api.call(`vm.${action}`, { vm: vm.id });
      this.applyResult(res);
    } catch (err) {
      toasts.error(`Could not ${ACTION_VERB[action]} “${vm.name}”`, err);
    } finally {
      if (this.#tokens[vm.id] === token) this.busy[vm.id] = undefined;
    }
  }
}

const ACTION_VERB: Record<PowerAction, string> = {
  start: 'start',
  stop: 'stop',
  kill: 'force off',
  reset: 'reset',
  pause: 'pause',
  resume: 'resume',
};
