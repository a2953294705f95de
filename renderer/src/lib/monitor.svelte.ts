// The read-only QEMU monitor of one VM (monitor.exec): what was asked and answered, and the
// command history for ↑/↓, kept while the app runs.
import { errorMessage, type ApiClient } from './api';

export interface MonitorEntry {
  id: number;
  command: string;
  output: string;
  error: boolean;
}

/** The first examples shown (the full list the host allows is MONITOR_COMMANDS, in api/rules). */
export const COMMON_COMMANDS = ['info status', 'info cpus', 'info block', 'info network', 'info balloon', 'info chardev', 'info version'];

const MAX_ENTRIES = 200;
const MAX_OUTPUT = 256 * 1024;
const MAX_HISTORY = 100;

let nextId = 1;

export class MonitorSession {
  entries = $state<MonitorEntry[]>([]);
  busy = $state(false);
  /** Oldest first. */
  history: string[] = [];
  #api: ApiClient;
  #vmId: string;

  constructor(api: ApiClient, vmId: string) {
    this.#api = api;
    this.#vmId = vmId;
  }

  async run(command: string): Promise<void> {
    const cmd = command.trim();
    if (!cmd) return;
    if (this.history.at(-1) !== cmd) this.history.push(cmd);
    if (this.history.length > MAX_HISTORY) this.history.splice(0, this.history.length - MAX_HISTORY);
    if (cmd === 'clear') {
      this.entries = [];
      return;
    }
    this.busy = true;
    const entry: MonitorEntry = { id: nextId++, command: cmd, output: '', error: false };
    try {
      const r = await this.#api.call('monitor.exec', { vm: this.#vmId, command: cmd });
      entry.output = r.output.length > MAX_OUTPUT ? `${r.output.slice(0, MAX_OUTPUT)}\n… (cut at ${MAX_OUTPUT / 1024} KiB)` : r.output;
    } catch (err) {
      entry.output = errorMessage(err);
      entry.error = true;
    } finally {
      this.busy = false;
    }
    const next = [...this.entries, entry];
    this.entries = next.length > MAX_ENTRIES ? next.slice(next.length - MAX_ENTRIES) : next;
  }

  clear(): void {
    this.entries = [];
  }
}

/** The monitor of each VM of one host (kept while the app runs: what was asked stays). */
export class Monitors {
  // a lookup table, never read by reactive code
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  #byVm = new Map<string, MonitorSession>();
  #api: ApiClient;

  constructor(api: ApiClient) {
    this.#api = api;
  }

  for(vmId: string): MonitorSession {
    let s = this.#byVm.get(vmId);
    if (!s) this.#byVm.set(vmId, (s = new MonitorSession(this.#api, vmId)));
    return s;
  }
}
