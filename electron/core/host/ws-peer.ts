// A PeerClient over another host's `corral serve` WebSocket API, with an API token of that
// host: two Corral hosts can migrate between them today. The cluster replaces it with its
// mutual-TLS link; the migration code only sees PeerClient.
import WebSocket from 'ws';
import type { ApiError, ArgsIn, MethodName, Result } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import type { PeerClient } from '../vms/migration/peer.js';

const CONNECT_TIMEOUT_MS = 15_000;

export function connectWsPeer(url: string, token: string): Promise<PeerClient> {
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw new CorralError('invalid-argument', `invalid argument "to": ${url} is not a URL`, 'to', { reason: 'is not a URL' });
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw new CorralError('invalid-argument', 'invalid argument "to": must be an http or https URL', 'to', {
      reason: 'must be an http or https URL',
    });
  const api = new URL('/api', base);
  api.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  api.searchParams.set('token', token);
  const address = base.hostname.replace(/^\[(.*)\]$/, '$1');
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(api, { handshakeTimeout: CONNECT_TIMEOUT_MS });
    const fail = (why: string) => reject(new CorralError('failed', `cannot reach the target host ${base.origin}: ${why}`, 'to'));
    ws.once('unexpected-response', (_req, res) => fail(res.statusCode === 401 ? 'the token was refused' : `HTTP ${res.statusCode ?? '?'}`));
    ws.once('error', (err) => fail(err.message));
    ws.once('open', () => resolve(new WsPeer(ws, address)));
  });
}

class WsPeer implements PeerClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(
    private readonly ws: WebSocket,
    readonly address: string,
  ) {
    ws.on('message', (raw) => {
      let msg: { id?: number; result?: unknown; error?: ApiError };
      try {
        msg = JSON.parse(raw.toString()) as typeof msg;
      } catch {
        return;
      }
      const p = msg.id !== undefined ? this.pending.get(msg.id) : undefined;
      if (!p) return;
      this.pending.delete(msg.id!);
      if (msg.error) p.reject(new CorralError(msg.error.code, `the target host says: ${msg.error.message}`, msg.error.field));
      else p.resolve(msg.result);
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      for (const p of this.pending.values()) p.reject(new CorralError('failed', 'the connection to the target host closed'));
      this.pending.clear();
    });
  }

  call<M extends MethodName>(method: M, args: ArgsIn<M>): Promise<Result<M>> {
    if (this.ws.readyState !== WebSocket.OPEN) return Promise.reject(new CorralError('failed', 'the connection to the target host closed'));
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
