// The serial console link of one VM: old output from serial.log first, then live serial.data
// after serial.attach; keystrokes go out with serial.write. Re-attaches after a reconnection
// and when the VM runs again (the host pushes serial.closed when it stops).
import { api, ApiCallError, base64ToBytes, bytesToBase64, errorMessage } from './api';
import { LogAligner } from './serial-align';
import { toasts } from './toasts.svelte';

export interface TerminalSink {
  /** Clear everything (a fresh copy of the log follows). */
  reset(): void;
  /** Old output: shown, but the terminal must not answer queries in it (e.g. cursor reports). */
  writeHistory(bytes: Uint8Array): void;
  /** Live output. */
  write(bytes: Uint8Array): void;
}

/** How much of the kept log to show as scrollback. */
const TAIL_BYTES = 256 * 1024;
/** Bytes per serial.write (the host takes at most 64 KiB each). */
const WRITE_CHUNK = 32 * 1024;
/** How long live output may be held back while matching it against the end of the log. */
const ALIGN_MS = 400;

function concat(chunks: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

export class SerialLink {
  /** Live data is flowing and input goes to the guest. */
  attached = $state(false);
  /** The log (and the attach, when live) is being fetched. */
  loading = $state(true);
  error = $state<string | null>(null);

  #vmId: string;
  #sink: TerminalSink;
  #live = false;
  #gen = 0;
  /** Non-null while syncing: live bytes wait here until the log is written. */
  #pending: Uint8Array[] | null = null;
  /** Right after the log: drops the live bytes that the log already showed. */
  #aligner: LogAligner | null = null;
  #alignTimer: ReturnType<typeof setTimeout> | null = null;
  #out: Uint8Array[] = [];
  #writing = false;
  #off: Array<() => void> = [];
  #disposed = false;
  #conflicts = 0;

  #isLive: () => boolean;

  /** `isLive` tells whether the VM is running (or paused) right now. */
  constructor(vmId: string, sink: TerminalSink, isLive: () => boolean) {
    this.#vmId = vmId;
    this.#sink = sink;
    this.#isLive = isLive;
  }

  /** Starts listening (and syncing once connected). */
  start(): void {
    this.#live = this.#isLive();
    this.#off.push(
      api.on('serial.data', (p) => {
        if (p.vmId !== this.#vmId) return;
        const bytes = base64ToBytes(p.data);
        if (this.#pending) this.#pending.push(bytes);
        else if (this.attached) this.#show(bytes);
      }),
      api.on('serial.closed', (p) => {
        if (p.vmId !== this.#vmId) return;
        this.attached = false;
        this.#live = false;
        // it may already be running again (restart policy): look once the state caught up
        setTimeout(() => {
          if (!this.#disposed) this.setLive(this.#isLive());
        }, 300);
      }),
      // after a reconnection the host forgot our attach, and we missed output: sync again
      api.onConnect(() => {
        this.attached = false;
        void this.#sync();
      }),
    );
  }

  /** Follows the VM's state: attach when it runs (again). */
  setLive(live: boolean): void {
    if (!live) {
      this.#live = false;
      this.attached = false;
      return;
    }
    if (this.#live) return;
    this.#live = true;
    void this.#sync();
  }

  /** Fetches the log (and attaches first when the VM is running). */
  async #sync(): Promise<void> {
    if (this.#disposed) return;
    const gen = ++this.#gen;
    const live = this.#live;
    this.loading = true;
    this.#stopAlign();
    this.#pending = live ? [] : null;
    let attachedNow = false;
    try {
      if (live) {
        try {
          await api.call('serial.attach', { vm: this.#vmId });
          attachedNow = true;
        } catch (err) {
          if (!(err instanceof ApiCallError && err.code === 'conflict')) throw err;
          // not attachable (stopped in between, or not quite up): show the log, look again soon
          this.#live = false;
          if (this.#conflicts++ < 5) {
            setTimeout(() => {
              if (!this.#disposed) this.setLive(this.#isLive());
            }, 1000);
          }
        }
      }
      const log = await api.call('serial.log', { vm: this.#vmId, tailBytes: TAIL_BYTES });
      if (gen !== this.#gen || this.#disposed) return;
      const logBytes = base64ToBytes(log.data);
      const early = this.#pending ? concat(this.#pending) : new Uint8Array();
      this.#sink.reset();
      this.#sink.writeHistory(logBytes);
      this.attached = attachedNow && this.#live;
      if (this.attached) {
        this.#startAlign(logBytes);
        if (early.length) this.#show(early);
      }
      if (attachedNow) this.#conflicts = 0;
      this.error = null;
    } catch (err) {
      if (gen === this.#gen) this.error = errorMessage(err);
    } finally {
      if (gen === this.#gen) {
        this.#pending = null;
        this.loading = false;
      }
    }
  }

  #startAlign(log: Uint8Array): void {
    this.#stopAlign();
    this.#aligner = new LogAligner(log);
    this.#alignTimer = setTimeout(() => {
      const rest = this.#aligner?.flush();
      this.#aligner = null;
      if (rest?.length && !this.#disposed) this.#sink.write(rest);
    }, ALIGN_MS);
  }

  #stopAlign(): void {
    if (this.#alignTimer) clearTimeout(this.#alignTimer);
    this.#alignTimer = null;
    this.#aligner = null;
  }

  /** Live output, minus what the log already showed. */
  #show(bytes: Uint8Array): void {
    const a = this.#aligner;
    if (!a) return this.#sink.write(bytes);
    const out = a.push(bytes);
    if (a.done) this.#stopAlign();
    if (out.length) this.#sink.write(out);
  }

  /** Sends keystrokes; writes are coalesced and kept in order. */
  write(bytes: Uint8Array): void {
    if (!this.attached || !bytes.length) return;
    this.#out.push(bytes);
    void this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (this.#out.length && !this.#disposed) {
        const all = concat(this.#out.splice(0));
        for (let i = 0; i < all.length; i += WRITE_CHUNK) {
          const chunk = all.subarray(i, i + WRITE_CHUNK);
          await api.call('serial.write', { vm: this.#vmId, data: bytesToBase64(chunk) });
        }
      }
    } catch (err) {
      this.#out = [];
      toasts.error('Could not send input to the console', err);
    } finally {
      this.#writing = false;
    }
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#gen++;
    this.#stopAlign();
    for (const off of this.#off.splice(0)) off();
    if (this.attached) {
      this.attached = false;
      api.call('serial.detach', { vm: this.#vmId }).catch(() => {
        // the VM may be gone or stopped already; nothing is left to detach then
      });
    }
  }
}
