// A QMP client: greeting, capabilities negotiation, commands matched to replies by id, a
// timeout on every command, events, and JSON lines that arrive split across reads.
//
// QEMU greets from its monitor thread as soon as the socket is connected, but answers commands
// only once it has built the machine, which takes as long again. Commands may be sent before
// the negotiation is over: they go out right after qmp_capabilities, in order, so their answers
// come with its answer instead of one round trip after it.
import { EventEmitter } from 'node:events';
import net from 'node:net';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export class QmpError extends Error {
  constructor(
    readonly qmpClass: string,
    message: string,
  ) {
    super(message);
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export interface QmpClientEvents {
  event: [QmpEvent];
  close: [];
}

export class QmpClient extends EventEmitter<QmpClientEvents> {
  private buf = '';
  private nextId = 1;
  private pending = new Map<string, Pending>();
  private greeting: ((g: unknown) => void) | null = null;
  /** Commands written before the greeting came, sent right after it. */
  private held: string[] | null = [];
  closed = false;
  /** Settles once capabilities are negotiated (rejects if they cannot be). */
  ready: Promise<void> = Promise.resolve();

  private constructor(private readonly sock: net.Socket) {
    super();
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    sock.on('error', () => {
      // 'close' follows; errors surface through pending commands
    });
    sock.on('close', () => this.onClose());
  }

  /** Connects, waits for the greeting and negotiates capabilities. */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const client = await QmpClient.open(path, timeoutMs);
    await client.ready;
    return client;
  }

  /**
   * Connects and returns at once; the greeting and the negotiation follow (see `ready`, which
   * closes the client if they fail). Commands may be executed meanwhile.
   */
  static async open(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(path);
      s.once('connect', () => {
        s.removeListener('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
    const client = new QmpClient(sock);
    const greeted = client.waitGreeting(timeoutMs);
    const negotiated = client.execute('qmp_capabilities', undefined, timeoutMs);
    client.ready = Promise.all([greeted, negotiated]).then(
      () => undefined,
      (err: unknown) => {
        client.close();
        throw err;
      },
    );
    client.ready.catch(() => undefined); // the caller may never look
    return client;
  }

  private waitGreeting(timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('QMP greeting timed out')), timeoutMs);
      this.greeting = (g) => {
        clearTimeout(timer);
        resolve(g);
      };
      this.once('close', () => {
        clearTimeout(timer);
        reject(new Error('QMP closed before its greeting'));
      });
    });
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 3000): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`QMP connection closed (${command})`));
    const id = `c${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP command ${command} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      const line = JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n';
      if (this.held) this.held.push(line);
      else this.sock.write(line);
    });
  }

  close(): void {
    this.sock.destroy();
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line) this.onLine(line);
    }
    if (this.buf.length > 16 * 1024 * 1024) this.sock.destroy(); // a runaway peer, not QEMU
  }

  private onLine(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return; // QMP only ever sends JSON objects; ignore noise
    }
    if ('QMP' in msg) {
      if (this.held) this.sock.write(this.held.join(''));
      this.held = null;
      this.greeting?.(msg.QMP);
      this.greeting = null;
    } else if ('event' in msg) {
      this.emit('event', msg as unknown as QmpEvent);
    } else if ('id' in msg) {
      const p = this.pending.get(String(msg.id));
      if (!p) return; // reply to a command that already timed out
      this.pending.delete(String(msg.id));
      clearTimeout(p.timer);
      if ('error' in msg) {
        const e = msg.error as { class?: string; desc?: string };
        p.reject(new QmpError(e.class ?? 'GenericError', e.desc ?? 'QMP error'));
      } else p.resolve(msg.return);
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error('QMP connection closed'));
    }
    this.pending.clear();
    this.emit('close');
  }
}
