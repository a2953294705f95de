// The serial console link of one VM: old output from serial.log first, then live serial.data
// after serial.attach; keystrokes go out with serial.write. Re-attaches after a reconnection
// and when the VM runs again (the host pushes serial.closed when it stops).
//
// Live output carries its position in the log, and serial.log says where the log it returned
// ends: the two join exactly (what the log showed is not shown again), and output the host
// did not send us (we fell behind) shows as a gap.
import { ApiCallError, base64ToBytes, bytesToBase64, errorMessage, type ApiClient } from './api';
import { StreamJoin } from './serial-join';
import { toasts } from './toasts.svelte';

export interface TerminalSink {
  /** Clear everything (a fresh copy of the log follows). */
  reset(): void;
  /** Old output: shown, but the terminal must not answer queries in it (e.g. cursor reports). */
  writeHistory(bytes: Uint8Array): void;
  /** Live output. */
  write(bytes: Uint8Array): void;
  /** Live output that did not reach us (the host skips a client that falls behind). */
  missed(bytes: number): void;
}

/** How much of the kept log to show as scrollback. */
const TAIL_BYTES = 256 * 1024;
/** Bytes per serial.write (the host takes at most 64 KiB each). */
const WRITE_CHUNK = 32 * 1024;
interface Chunk {
  bytes: Uint8Array;
  offset: number;
}

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
  /** Why the host ended the console of a VM on another host (it moved, or its host went away). */
  ended = $state<string | null>(null);

  #api: ApiClient;
  #vmId: string;
  #sink: TerminalSink;
  #live = false;
  #gen = 0;
  /** Non-null while syncing: live output waits here until the log is written. */
  #pending: Chunk[] | null = null;
  /** Joins live output to the log that was written (null until then). */
  #join: StreamJoin | null = null;
  #out: Uint8Array[] = [];
  #writing = false;
  #off: Array<() => void> = [];
  #disposed = false;
  #conflicts = 0;

  #isLive: () => boolean;

  /** `isLive` tells whether the VM is running (or paused) right now. */
  constructor(api: ApiClient, vmId: string, sink: TerminalSink, isLive: () => boolean) {
    this.#api = api;
    this.#vmId = vmId;
    this.#sink = sink;
    this.#isLive = isLive;
  }

  /** Starts listening (and syncing once connected). */
  start(): void {
    this.#live = this.#isLive();
    const api = this.#api;
    this.#off.push(
      api.on('serial.data', (p) => {
        if (p.vmId !== this.#vmId) return;
        const chunk = { bytes: base64ToBytes(p.data), offset: p.offset };
        if (this.#pending) this.#pending.push(chunk);
        else if (this.attached) this.#show(chunk);
      }),
      api.on('serial.closed', (p) => {
        if (p.vmId !== this.#vmId) return;
        this.attached = false;
        this.#live = false;
        if (p.reason) this.ended = p.reason;
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

  /** Opens the console again now (after it ended): a VM that moved is found on its new host. */
  reconnect(): void {
    this.#conflicts = 0;
    this.error = null;
    this.#live = this.#isLive();
    void this.#sync();
  }

  /** Fetches the log (and attaches first when the VM is running). */
  async #sync(): Promise<void> {
    if (this.#disposed) return;
    const gen = ++this.#gen;
    const live = this.#live;
    this.loading = true;
    this.#pending = live ? [] : null;
    let attachedNow = false;
    try {
      if (live) {
        try {
          await this.#api.call('serial.attach', { vm: this.#vmId });
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
      const log = await this.#api.call('serial.log', { vm: this.#vmId, tailBytes: TAIL_BYTES });
      if (gen !== this.#gen || this.#disposed) return;
      const early = this.#pending ?? [];
      this.#sink.reset();
      this.#sink.writeHistory(base64ToBytes(log.data));
      this.#join = new StreamJoin(log.size);
      this.attached = attachedNow && this.#live;
      if (this.attached) for (const c of early) this.#show(c);
      if (attachedNow) {
        this.#conflicts = 0;
        this.ended = null;
      }
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

  /** Live output, minus what was shown already (by the log); a jump ahead is output we missed. */
  #show({ bytes, offset }: Chunk): void {
    if (!this.#join) return;
    const { show, missed } = this.#join.take(bytes, offset);
    if (missed) this.#sink.missed(missed);
    if (show.length) this.#sink.write(show);
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
          await this.#api.call('serial.write', { vm: this.#vmId, data: bytesToBase64(chunk) });
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
    for (const off of this.#off.splice(0)) off();
    if (this.attached) {
      this.attached = false;
      this.#api.call('serial.detach', { vm: this.#vmId }).catch(() => {
        // the VM may be gone or stopped already; nothing is left to detach then
      });
    }
  }
}
