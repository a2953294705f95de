// The host's one link to a guest's serial port. QEMU's socket chardev takes a single client,
// so the host holds it and fans bytes out to every attached console; QEMU itself keeps the
// log (logfile=), so nothing printed while no one watched is lost.
import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const BATCH_MS = 8;

export class SerialLink {
  private sock: net.Socket | null = null;
  private readonly listeners = new Set<(data: Buffer) => void>();
  private readonly closeListeners = new Set<() => void>();
  closed = false;

  constructor(private readonly socketPath: string) {}

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
    this.sock.on('data', (d: Buffer) => this.coalesce(d));
    this.sock.on('error', () => {
      // 'close' follows
    });
    this.sock.on('close', () => this.close());
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
    for (const fn of this.listeners) fn(d);
  }

  subscribe(fn: (data: Buffer) => void): () => void {
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
    if (this.pending.length) this.emitData(Buffer.concat(this.pending.splice(0)));
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
