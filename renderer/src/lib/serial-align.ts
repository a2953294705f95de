// Joining the serial log (shown first) and the live stream (after attaching) without showing
// bytes twice. QEMU writes its log file before the host reads the same bytes from the serial
// socket, so the log usually runs a little ahead of the live stream: the first live bytes are
// often a repeat of the log's last ones. serial.data carries no offset, so the overlap is
// found by matching: the live stream must continue the log exactly from some recent position.

const WINDOW = 16 * 1024;
/** Shorter matches could be chance (a prompt, a newline): then nothing is dropped. */
const MIN_OVERLAP = 8;

export class LogAligner {
  #log: Uint8Array;
  #held = new Uint8Array(256);
  #n = 0;
  /** Positions in the log where the live stream may have started. */
  #cands: number[];
  #done = false;

  constructor(log: Uint8Array) {
    this.#log = log;
    this.#cands = [];
    for (let p = Math.max(0, log.length - WINDOW); p < log.length; p++) this.#cands.push(p);
    if (!this.#cands.length) this.#done = true;
  }

  get done(): boolean {
    return this.#done;
  }

  /** Feeds live bytes; returns what to show now (possibly nothing while still deciding). */
  push(bytes: Uint8Array): Uint8Array {
    if (this.#done) return bytes;
    this.#append(bytes);
    const log = this.#log;
    const len = log.length;
    const start = this.#n - bytes.length;
    for (let i = start; i < this.#n && this.#cands.length; i++) {
      const b = this.#held[i];
      this.#cands = this.#cands.filter((p) => p + i >= len || log[p + i] === b);
    }
    if (!this.#cands.length) return this.#finish(0);
    // candidates whose whole log tail is matched: the live stream went past the log's end
    let best = -1;
    let pending = false;
    for (const p of this.#cands) {
      const overlap = len - p;
      if (overlap <= this.#n) best = Math.max(best, overlap);
      else pending = true;
    }
    if (pending && this.#n < WINDOW) return new Uint8Array(0); // a longer overlap may still complete
    return this.#finish(best >= MIN_OVERLAP ? best : 0);
  }

  /** Stops deciding (nothing more came for a while): returns what is still held back. */
  flush(): Uint8Array {
    if (this.#done) return new Uint8Array(0);
    // everything held is a repeat of the log if it matched long enough
    return this.#finish(this.#n >= MIN_OVERLAP ? this.#n : 0);
  }

  #finish(skip: number): Uint8Array {
    this.#done = true;
    this.#cands = [];
    const out = this.#held.slice(Math.min(skip, this.#n), this.#n);
    this.#held = new Uint8Array(0);
    this.#n = 0;
    return out;
  }

  #append(bytes: Uint8Array): void {
    if (this.#n + bytes.length > this.#held.length) {
      const next = new Uint8Array(Math.max(this.#held.length * 2, this.#n + bytes.length));
      next.set(this.#held.subarray(0, this.#n));
      this.#held = next;
    }
    this.#held.set(bytes, this.#n);
    this.#n += bytes.length;
  }
}
