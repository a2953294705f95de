// Flow control between a byte stream (serial port, pty) and xterm.js. xterm parses what it is
// given in time slices, but everything handed to term.write() waits in its memory, and a guest
// printing as fast as it can (cat /dev/urandom, a 50 MB log) outruns any renderer. So: at most
// HIGH_WATER bytes are handed to xterm at a time (term.write's callback says when they are
// parsed), the rest waits here, and when that backlog passes MAX_QUEUE we skip to the latest
// output and say so, in the terminal and to the caller. Memory stays bounded, the page stays
// responsive, and what is on screen is what the guest prints now.

export interface FlowTarget {
  write(data: Uint8Array | string, callback?: () => void): void;
}

export interface FlowOptions {
  /** Bytes handed to xterm and not yet parsed. */
  highWater?: number;
  /** Backlog (waiting here) that triggers a skip. */
  maxQueue?: number;
  /** What is kept of the backlog when skipping: the latest output. */
  keepOnSkip?: number;
  /** Called after each skip with the bytes skipped so far (in total). */
  onSkip?: (skippedTotal: number, skippedNow: number) => void;
}

const MiB = 1024 * 1024;
/**
 * The most handed to xterm in one write: it parses a write in one go, and only yields to the
 * page between writes (a 1 MB write is a long task). Small chunks are joined up to it, as
 * many small writes cost a callback each.
 */
const BATCH = 64 * 1024;

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

export function formatSkipped(bytes: number): string {
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${bytes} bytes`;
}

export class FlowWriter {
  readonly #target: FlowTarget;
  readonly #high: number;
  readonly #max: number;
  readonly #keep: number;
  readonly #onSkip: FlowOptions['onSkip'];
  #pending = 0;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #skipped = 0;
  #closed = false;
  /** Skip notes waiting in the backlog, and the bytes each reports. */
  #notes = new WeakMap<Uint8Array, number>();

  constructor(target: FlowTarget, opts: FlowOptions = {}) {
    this.#target = target;
    this.#high = opts.highWater ?? 2 * MiB;
    this.#max = opts.maxQueue ?? 8 * MiB;
    this.#keep = opts.keepOnSkip ?? 64 * 1024;
    this.#onSkip = opts.onSkip;
  }

  /** Bytes given to xterm that it has not parsed yet. */
  get pending(): number {
    return this.#pending;
  }

  /** Bytes waiting here for xterm. */
  get queued(): number {
    return this.#queued;
  }

  /** Everything skipped so far. */
  get skipped(): number {
    return this.#skipped;
  }

  write(bytes: Uint8Array): void {
    if (this.#closed || !bytes.length) return;
    if (this.#pending < this.#high && !this.#queue.length) {
      this.#send(bytes);
      return;
    }
    this.#queue.push(bytes);
    this.#queued += bytes.length;
    if (this.#queued > this.#max) this.#skip();
  }

  /** Drops the backlog (e.g. the terminal is being reset for a fresh copy of the log). */
  clear(): void {
    this.#queue = [];
    this.#queued = 0;
  }

  close(): void {
    this.#closed = true;
    this.clear();
  }

  #send(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.length; at += BATCH) {
      const piece = bytes.subarray(at, at + BATCH);
      this.#pending += piece.length;
      this.#target.write(piece, () => {
        this.#pending -= piece.length;
        this.#pump();
      });
    }
  }

  #pump(): void {
    while (!this.#closed && this.#queue.length && this.#pending < this.#high) {
      const batch: Uint8Array[] = [];
      let n = 0;
      while (this.#queue.length && n < BATCH) {
        const c = this.#queue.shift()!;
        batch.push(c);
        n += c.length;
      }
      this.#queued -= n;
      this.#send(concat(batch, n));
    }
  }

  /** Keeps only the latest output of the backlog. */
  #skip(): void {
    // notes of earlier skips still waiting are not output: the new note says their bytes too
    let earlier = 0;
    const output: Uint8Array[] = [];
    let n = 0;
    for (const c of this.#queue) {
      const said = this.#notes.get(c);
      if (said !== undefined) earlier += said;
      else {
        output.push(c);
        n += c.length;
      }
    }
    const all = concat(output, n);
    const kept = all.slice(Math.max(0, all.length - this.#keep));
    // start the kept part at a line boundary when there is one nearby
    const nl = kept.indexOf(0x0a);
    const tail = nl >= 0 && nl < kept.length - 1 && nl < 4096 ? kept.subarray(nl + 1) : kept;
    const dropped = all.length - tail.length;
    const note = this.#note(earlier + dropped);
    this.#queue = [note, tail];
    this.#queued = note.length + tail.length;
    this.#counted(dropped);
  }

  /** Output that never reached us (the sender skipped it): said in the terminal, and counted. */
  missed(bytes: number): void {
    if (this.#closed || bytes <= 0) return;
    this.#counted(bytes);
    this.write(this.#note(bytes));
  }

  #note(bytes: number): Uint8Array {
    const note = skipNote(bytes);
    this.#notes.set(note, bytes);
    return note;
  }

  #counted(bytes: number): void {
    this.#skipped += bytes;
    this.#onSkip?.(this.#skipped, bytes);
  }
}

/** CAN ends any escape sequence cut in half; then attributes are reset and the skip is said. */
function skipNote(bytes: number): Uint8Array {
  return new TextEncoder().encode(
    `\x18\x1b[0m\r\n\x1b[7m … ${formatSkipped(bytes)} of output skipped (arriving faster than it can be shown) … \x1b[0m\r\n`,
  );
}
