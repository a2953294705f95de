// The CLI's side of the control socket: calls, their replies by id, and pushed events.
import net from 'node:net';
import type { ApiError, ArgsIn, EventMap, EventName, MethodName, Result } from '../core/api/contract.js';

export class ApiCallError extends Error {
  constructor(readonly error: ApiError) {
    super(error.message);
  }
}

export class NoHostError extends Error {}

export class ControlClient {
  private buf = '';
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private listeners = new Set<(event: EventName, payload: unknown) => void>();
  private closeListeners = new Set<() => void>();

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        if (line) this.onMessage(JSON.parse(line) as Record<string, unknown>);
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('the Corral host closed the connection'));
      this.pending.clear();
      this.closeListeners.forEach((fn) => fn());
    });
  }

  static connect(socketPath: string, dataDir: string): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(socketPath);
      sock.once('connect', () => resolve(new ControlClient(sock)));
      sock.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
          reject(
            new NoHostError(
              `no Corral host is running for ${dataDir}. Start one: \`corral serve${dataDir === process.env.CORRAL_DATA ? '' : ` --data ${dataDir}`}\` (headless) or the desktop app.`,
            ),
          );
        } else reject(err);
      });
    });
  }

  call<M extends MethodName>(method: M, args: ArgsIn<M>): Promise<Result<M>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.sock.write(JSON.stringify({ id, method, args }) + '\n');
    });
  }

  on<E extends EventName>(event: E, fn: (payload: EventMap[E]) => void): void {
    this.listeners.add((ev, payload) => {
      if (ev === event) fn(payload as EventMap[E]);
    });
  }

  onClose(fn: () => void): void {
    this.closeListeners.add(fn);
  }

  close(): void {
    this.sock.end();
  }

  private onMessage(msg: Record<string, unknown>): void {
    if ('event' in msg) {
      this.listeners.forEach((fn) => fn(msg.event as EventName, msg.payload));
      return;
    }
    const p = this.pending.get(msg.id as number);
    if (!p) return;
    this.pending.delete(msg.id as number);
    if ('error' in msg) p.reject(new ApiCallError(msg.error as ApiError));
    else p.resolve(msg.result);
  }
}
