// A client of `corral serve`'s WebSocket API, as the browser UI uses it.
import WebSocket from 'ws';
import type { ArgsIn, MethodName, Result } from '../../electron/core/api/contract';

export class WsApi {
  events: Array<{ event: string; payload: unknown }> = [];
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (raw) => {
      const msg = JSON.parse(raw.toString()) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
        event?: string;
        payload?: unknown;
      };
      if (msg.event) this.events.push({ event: msg.event, payload: msg.payload });
      const p = msg.id !== undefined ? this.pending.get(msg.id) : undefined;
      if (!p) return;
      this.pending.delete(msg.id!);
      if (msg.error) p.reject(Object.assign(new Error(msg.error.message), { api: msg.error }));
      else p.resolve(msg.result);
    });
  }

  static connect(port: number, token: string, origin?: string): Promise<WsApi> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/api?token=${encodeURIComponent(token)}`, origin ? { origin } : {});
      ws.once('open', () => resolve(new WsApi(ws)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  call<M extends MethodName>(method: M, args: ArgsIn<M>): Promise<Result<M>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.ws.send(JSON.stringify({ id, method, args }));
    });
  }

  close(): void {
    this.ws.close();
  }
}

/** Opens the VNC WebSocket and resolves with the first bytes QEMU's VNC server sends, or the HTTP status refusing it. */
export function vncHello(port: number, path: string, origin?: string): Promise<{ hello?: string; status?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, ['binary'], origin ? { origin } : {});
    ws.once('message', (d: Buffer) => {
      ws.close();
      resolve({ hello: d.toString('latin1') });
    });
    ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode }));
    ws.once('error', () => resolve({ status: -1 }));
  });
}
