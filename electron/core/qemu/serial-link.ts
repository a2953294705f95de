// The host's one link to a guest's serial port. QEMU's socket chardev takes a single client,
// so the host holds it and fans bytes out to every attached console; QEMU itself keeps the
// log (logfile=), so nothing printed while no one watched is lost.
//
// Each byte of the live stream has a position: the log's size when the link was accepted,
// plus the bytes received since. Consoles use it to join the scrollback (serial.log) and the
// live stream exactly, and to notice output they were not sent. The log file cannot serve
// as the reference past that point: QEMU logs a byte a second time when its socket write
// has to be retried. So while the link is up, the scrollback comes from the link's own
// record of what it received (the last MiB), joined to the file where the link began.
import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const BATCH_MS = 8;
/** The most one serial.data message carries. */
const MAX_MESSAGE = 256 * 1024;
/** Live output kept for serial.log (the console asks for the last 256 KiB). */
const RECENT_BYTES = 1024 * 1024;

export type SerialListener = (data: Buffer, offset: number) => void;

export class SerialLink {
  private sock: net.Socket | null = null;
  private readonly listeners = new Set<SerialListener>();
  private readonly closeListeners = new Set<() => void>();
  closed = false;
  /** Log position of the next byte to come; null until begin(). */
  private next: number | null = null;
  /** Log position of the first byte received. */
  private first = 0;
  /** Bytes received before begin() (the start position is not known yet). */
  private early: Buffer[] = [];
  /** The latest output (chunks as received, the first may reach back past RECENT_BYTES). */
  private recent: Buffer[] = [];
  private recentBytes = 0;

  constructor(private readonly socketPath: string) {}

  /** Connects; output is held until begin() says where in the log it starts. */
  async connect(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        this.sock = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection(this.socketPath);
          s.once('connect', () => {
            s.removeListener('error', reject);
            resolve(s);
          });
          s.once('error', reject);
        });
        break;
      } catch (err) {
        if (Date.now() > deadline || this.closed) throw new Error(`serial console: ${(err as Error).message}`);
        await sleep(5);
      }
    }
    // Read as soon as anything comes: QEMU writes the UART's bytes one by one, each using far
    // more socket buffer than its size, so a reader that lets them pile up soon makes QEMU's
    // writes fail and retry (or drop a byte).
    this.sock.on('data', (d: Buffer) => (this.next === null ? this.early.push(d) : this.coalesce(d)));
    this.sock.on('error', () => {
      // 'close' follows
    });
    this.sock.on('close', () => this.close());
  }

  /** Bytes received and not yet placed by begin(). */
  get held(): number {
    return this.early.reduce((n, b) => n + b.length, 0);
  }

  /**
   * Places the stream in the log: `logSize` is the log's size now, which includes what was
   * received so far (QEMU logs each write right after sending it).
   */
  begin(logSize: number): void {
    if (this.next !== null) return;
    this.next = this.first = Math.max(0, logSize - this.held);
    const early = this.early.splice(0);
    if (early.length) this.coalesce(Buffer.concat(early));
  }

  /** Log position just past the last byte received (null before begin()). */
  get offset(): number | null {
    return this.next;
  }

  /** Log position of the first byte received (null before begin()). */
  get start(): number | null {
    return this.next === null ? null : this.first;
  }

  /** Received output from log position `from` on, if it is still kept in memory. */
  recentFrom(from: number): Buffer | null {
    if (this.next === null) return null;
    if (from < this.next - this.recentBytes || from > this.next) return null;
    // walk back from the newest chunk to the one holding `from`: only those are copied
    const parts: Buffer[] = [];
    let at = this.next;
    for (let i = this.recent.length - 1; i >= 0 && at > from; i--) {
      const c = this.recent[i]!;
      at -= c.length;
      parts.unshift(at < from ? c.subarray(from - at) : c);
    }
    return Buffer.concat(parts);
  }

  // An emulated UART hands over a byte or two per read: forwarding each as its own message
  // would flood every client. The first chunk after a quiet spell goes out at once (keystroke
  // echo stays instant); what follows within the window is sent as one batch.
  private pending: Buffer[] = [];
  private window: NodeJS.Timeout | null = null;

  private coalesce(d: Buffer): void {
    if (!this.window) {
      this.emitData(d);
      this.window = setTimeout(() => this.flush(), BATCH_MS);
    } else this.pending.push(d);
  }

  private flush(): void {
    this.window = null;
    if (!this.pending.length) return;
    const batch = Buffer.concat(this.pending.splice(0));
    this.emitData(batch);
    this.window = setTimeout(() => this.flush(), BATCH_MS);
  }

  private emitData(d: Buffer): void {
    // a flood's batch goes out in pieces: each message costs every client a parse and a decode
    if (d.length > MAX_MESSAGE) {
      for (let i = 0; i < d.length; i += MAX_MESSAGE) this.emitData(d.subarray(i, i + MAX_MESSAGE));
      return;
    }
    const at = this.next!;
    this.next = at + d.length;
    this.recent.push(d);
    this.recentBytes += d.length;
    while (this.recentBytes - this.recent[0]!.length >= RECENT_BYTES) this.recentBytes -= this.recent.shift()!.length;
    for (const fn of this.listeners) fn(d, at);
  }

  subscribe(fn: SerialListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onClose(fn: () => void): () => void {
    if (this.closed) fn();
    else this.closeListeners.add(fn);
    return () => this.closeListeners.delete(fn);
  }

  write(data: Buffer): void {
    if (!this.sock || this.closed) throw new Error('the serial console is not connected (is the VM running?)');
    this.sock.write(data);
  }

  close(): void {
    if (this.closed) return;
    if (this.window) clearTimeout(this.window);
    if (this.pending.length && this.next !== null) this.emitData(Buffer.concat(this.pending.splice(0)));
    this.closed = true;
    this.sock?.destroy();
    this.listeners.clear();
    for (const fn of this.closeListeners) fn();
    this.closeListeners.clear();
  }
}

/** The last `maxBytes` of a log file, and its size. */
export function readTail(file: string, maxBytes: number): { data: Buffer; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return { data: Buffer.alloc(0), size: 0 };
  }
  try {
    const size = fs.fstatSync(fd).size;
    const start = Math.max(0, size - maxBytes);
    const data = Buffer.alloc(size - start);
    fs.readSync(fd, data, 0, data.length, start);
    return { data, size };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The last `maxBytes` of the serial log. `size` is the position just past `data`, where live
 * serial.data continues. While a link is up, what it received comes from its own record,
 * after the file's content from before the link began.
 */
export function readSerialLog(file: string, maxBytes: number, link: SerialLink | null): { data: Buffer; size: number } {
  const end = link?.offset ?? null;
  const start = link?.start ?? null;
  if (!link || end === null || start === null) return readTail(file, maxBytes);
  const from = Math.max(0, end - maxBytes);
  const live = link.recentFrom(Math.max(from, start));
  if (live) {
    const before = from < start ? readRange(file, from, start) : Buffer.alloc(0);
    return { data: Buffer.concat([before, live]), size: end };
  }
  // more than the link kept: only the file has it (with QEMU's rare repeated bytes)
  return { data: readTail(file, maxBytes).data, size: end };
}

/** Bytes [from, to) of a file (fewer if it is shorter). */
function readRange(file: string, from: number, to: number): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const buf = Buffer.alloc(Math.max(0, to - from));
    const n = fs.readSync(fd, buf, 0, buf.length, from);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** A log's size in bytes (0 when there is none yet). */
export function logSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}
