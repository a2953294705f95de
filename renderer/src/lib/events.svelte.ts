// One VM's event log: events.list once per connection, then live event.logged pushes.
import type { EventRecord } from '../../../electron/core/api/contract';
import { errorMessage, type ApiClient } from './api';

const LIMIT = 500;

export class VmEventLog {
  /** Newest first. */
  items = $state.raw<EventRecord[]>([]);
  loading = $state(true);
  error = $state<string | null>(null);

  #api: ApiClient;
  #vmId: string;
  #off: Array<() => void> = [];
  #gen = 0;

  constructor(api: ApiClient, vmId: string) {
    this.#api = api;
    this.#vmId = vmId;
  }

  /** Starts listening; returns the function that stops it (use from an $effect). */
  start(): () => void {
    const api = this.#api;
    this.#off.push(
      api.on('event.logged', (ev) => {
        if (ev.vmId === this.#vmId) this.#merge([ev]);
      }),
      api.onConnect(() => void this.reload()),
    );
    return () => {
      this.#gen++;
      for (const off of this.#off.splice(0)) off();
    };
  }

  async reload(): Promise<void> {
    const gen = ++this.#gen;
    this.loading = true;
    try {
      const list = await this.#api.call('events.list', { vm: this.#vmId, limit: LIMIT });
      if (gen !== this.#gen) return;
      this.#merge(list);
      this.error = null;
    } catch (err) {
      if (gen === this.#gen) this.error = errorMessage(err);
    } finally {
      if (gen === this.#gen) this.loading = false;
    }
  }

  #merge(incoming: EventRecord[]): void {
    const byId: Record<number, EventRecord> = {};
    for (const e of this.items) byId[e.id] = e;
    for (const e of incoming) byId[e.id] = e;
    this.items = Object.values(byId)
      .sort((a, b) => b.id - a.id)
      .slice(0, LIMIT);
  }
}
