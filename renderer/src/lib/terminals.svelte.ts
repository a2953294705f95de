// Terminals of the console area: a shell on the host, or ssh into the guest (terminal.open).
// A session lives here, not in a component, so it survives switching VMs or tabs: its xterm
// is moved into whichever element shows it. The host ends a connection's terminals with the
// connection, so a lost connection ends them here too (with a way to reopen).
import { FitAddon } from '@xterm/addon-fit';
import type { Terminal } from '@xterm/xterm';
import { base64ToBytes, bytesToBase64, errorMessage, type ApiClient } from './api';
import { FlowWriter } from './termflow';
import { toasts } from './toasts.svelte';
import { binaryToBytes, createTerminal, exposeTerminal } from './xterm';

export type TermKind = 'host' | 'ssh';
/** launcher: choosing what to open; lost: the connection to the host dropped (the host ended it). */
export type TermStatus = 'launcher' | 'opening' | 'open' | 'exited' | 'lost';

/** Bytes per terminal.write (the host takes 1 MiB of base64 at most). */
const WRITE_CHUNK = 64 * 1024;

let nextKey = 1;

export class TermSession {
  /** Stable key of this tab (the host's id changes when it is reopened). */
  readonly key = nextKey++;
  readonly vmId: string;
  kind = $state<TermKind>('host');
  user = $state('root');
  status = $state<TermStatus>('launcher');
  title = $state('Terminal');
  exitCode = $state<number | null>(null);
  error = $state<string | null>(null);
  /** Output skipped because it came faster than it could be shown (bytes). */
  skipped = $state(0);
  /** What a hovered OSC 8 link points to. */
  linkHint = $state<string | null>(null);
  /** A terminal was opened in this tab at least once (the launcher is done). */
  opened = $state(false);

  #id: string | null = null;
  #term: Terminal | null = null;
  #fit: FitAddon | null = null;
  #flow: FlowWriter | null = null;
  #out: Uint8Array[] = [];
  #writing = false;
  #size = { cols: 0, rows: 0 };
  #resizeTimer: ReturnType<typeof setTimeout> | null = null;
  #encoder = new TextEncoder();
  #api: ApiClient;
  /** The open terminals of this host by id, for its terminal.data and terminal.exit events. */
  #byId: Map<string, TermSession>;

  constructor(api: ApiClient, byId: Map<string, TermSession>, vmId: string) {
    this.#api = api;
    this.#byId = byId;
    this.vmId = vmId;
  }

  get term(): Terminal | null {
    return this.#term;
  }

  /** Shows the terminal in `el`: created the first time, moved there afterwards. */
  mount(el: HTMLElement): void {
    let t = this.#term;
    if (!t) {
      t = createTerminal((hint) => (this.linkHint = hint));
      const fit = new FitAddon();
      t.loadAddon(fit);
      t.open(el);
      this.#term = t;
      this.#fit = fit;
      this.#flow = new FlowWriter(t, { onSkip: (total) => (this.skipped = total) });
      t.onData((data) => this.#send(this.#encoder.encode(data)));
      t.onBinary((data) => this.#send(binaryToBytes(data)));
    } else if (t.element && t.element.parentElement !== el) {
      el.appendChild(t.element);
    }
    exposeTerminal(el, t);
  }

  /** Fits the terminal to its element and tells the host the new size. */
  fit(): void {
    const t = this.#term;
    const el = t?.element?.parentElement;
    if (!t || !this.#fit || !el || el.clientWidth === 0 || el.clientHeight === 0) return;
    try {
      this.#fit.fit();
    } catch {
      return; // not laid out yet
    }
    if (t.cols === this.#size.cols && t.rows === this.#size.rows) return;
    this.#size = { cols: t.cols, rows: t.rows };
    if (this.#resizeTimer) clearTimeout(this.#resizeTimer);
    this.#resizeTimer = setTimeout(() => {
      this.#resizeTimer = null;
      const id = this.#id;
      if (id && this.status === 'open') {
        this.#api.call('terminal.resize', { id, cols: this.#size.cols, rows: this.#size.rows }).catch(() => {
          // the terminal ended meanwhile; its exit event tells
        });
      }
    }, 60);
  }

  focus(): void {
    this.#term?.focus();
  }

  async open(kind: TermKind, user: string): Promise<void> {
    if (this.status === 'opening' || this.status === 'open') return;
    this.kind = kind;
    this.user = user;
    this.status = 'opening';
    this.error = null;
    this.exitCode = null;
    const t = this.#term;
    this.fit();
    const cols = Math.max(2, t?.cols ?? 80);
    const rows = Math.max(1, t?.rows ?? 24);
    try {
      const r = await this.#api.call('terminal.open', { kind, ...(kind === 'ssh' ? { vm: this.vmId, user } : {}), cols, rows });
      this.#id = r.id;
      this.#size = { cols, rows };
      this.#byId.set(r.id, this);
      this.title = r.title;
      this.status = 'open';
      this.opened = true;
      this.skipped = 0;
      t?.reset();
      this.fit();
      t?.focus();
    } catch (err) {
      this.status = this.opened ? 'exited' : 'launcher';
      this.error = errorMessage(err);
    }
  }

  /** The same kind of terminal again, in the same tab. */
  reopen(): Promise<void> {
    return this.open(this.kind, this.user);
  }

  /** Ends the terminal (if running) and frees everything. */
  dispose(): void {
    const id = this.#id;
    this.#id = null;
    if (id) {
      this.#byId.delete(id);
      if (this.status === 'open') {
        this.#api.call('terminal.close', { id }).catch(() => {
          // already gone
        });
      }
    }
    if (this.#resizeTimer) clearTimeout(this.#resizeTimer);
    this.#flow?.close();
    this.#term?.dispose();
    this.#term = null;
    this.#fit = null;
  }

  /** terminal.data */
  received(bytes: Uint8Array): void {
    this.#flow?.write(bytes);
  }

  /** terminal.exit */
  exited(code: number | null): void {
    this.#end();
    this.status = 'exited';
    this.exitCode = code;
    this.#term?.write(`\r\n\x1b[0m\x1b[2m[process exited${code === null ? '' : ` with code ${code}`}]\x1b[0m\r\n`);
  }

  /** The connection to the host dropped: the host ended the terminal with it. */
  lost(): void {
    if (this.status !== 'open' && this.status !== 'opening') return;
    this.#end();
    this.status = 'lost';
    this.#term?.write('\r\n\x1b[0m\x1b[2m[connection to the host lost: the terminal ended]\x1b[0m\r\n');
  }

  #end(): void {
    if (this.#id) this.#byId.delete(this.#id);
    this.#id = null;
    this.#out = [];
  }

  #send(bytes: Uint8Array): void {
    if (this.status !== 'open' || !bytes.length) return;
    this.#out.push(bytes);
    void this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (this.#out.length && this.#id) {
        const chunks = this.#out.splice(0);
        let n = 0;
        for (const c of chunks) n += c.length;
        const all = new Uint8Array(n);
        let o = 0;
        for (const c of chunks) {
          all.set(c, o);
          o += c.length;
        }
        for (let i = 0; i < all.length && this.#id; i += WRITE_CHUNK) {
          await this.#api.call('terminal.write', { id: this.#id, data: bytesToBase64(all.subarray(i, i + WRITE_CHUNK)) });
        }
      }
    } catch (err) {
      this.#out = [];
      if (this.status === 'open') toasts.error('Could not send input to the terminal', err);
    } finally {
      this.#writing = false;
    }
  }
}

/** The terminal tabs of each VM of one host (at least one: a launcher when nothing is open). */
export class Terminals {
  byVm = $state<Record<string, TermSession[]>>({});
  #api: ApiClient;
  // a lookup table, never read by reactive code
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  #byId = new Map<string, TermSession>();

  constructor(api: ApiClient) {
    this.#api = api;
    api.on('terminal.data', (p) => this.#byId.get(p.id)?.received(base64ToBytes(p.data)));
    api.on('terminal.exit', (p) => this.#byId.get(p.id)?.exited(p.code));
    // the host ends a connection's terminals with it
    api.onStatus((s) => {
      if (s.kind === 'open') return;
      for (const t of [...this.#byId.values()]) t.lost();
    });
    api.on('vm.removed', ({ id }) => {
      for (const s of this.byVm[id] ?? []) s.dispose();
      delete this.byVm[id];
    });
  }

  #session(vmId: string): TermSession {
    return new TermSession(this.#api, this.#byId, vmId);
  }

  list(vmId: string): TermSession[] {
    return this.byVm[vmId] ?? [];
  }

  /** Makes sure there is at least one tab, and returns the tabs. */
  ensure(vmId: string): TermSession[] {
    if (!this.byVm[vmId]?.length) this.byVm[vmId] = [this.#session(vmId)];
    return this.byVm[vmId];
  }

  add(vmId: string): TermSession {
    const s = this.#session(vmId);
    this.byVm[vmId] = [...this.list(vmId), s];
    return s;
  }

  /** Closes a tab (ending its terminal); returns the tab to show instead. */
  remove(vmId: string, key: number): TermSession | null {
    const list = this.list(vmId);
    const i = list.findIndex((s) => s.key === key);
    if (i < 0) return null;
    list[i].dispose();
    const rest = list.filter((s) => s.key !== key);
    this.byVm[vmId] = rest;
    return rest[Math.min(i, rest.length - 1)] ?? null;
  }
}
