// Console byte streams between hosts: an HTTP upgrade on the peer API (the same mutual TLS, the
// same admission of the calling host), after which the TLS socket carries one console of one VM
// raw. The stream is the socket itself, so TCP's flow control is the backpressure between hosts.
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { CorralError } from '../api/dispatcher.js';
import type { ApiError, ErrorCode } from '../api/contract.js';
import type { HostRecord } from './hosts.js';

export type StreamKind = 'serial' | 'vnc';

/**
 * The owner's side: checks that the VM's console can be opened here and returns what takes the
 * socket once the upgrade is answered; throws (a CorralError) to refuse.
 */
export type PeerStreamOpen = (
  caller: string,
  address: string | null,
  kind: StreamKind,
  vmId: string,
) => Promise<(socket: Duplex) => void> | ((socket: Duplex) => void);

const UPGRADE = 'corral-console';
/** How long the owner may take to accept a console (TLS handshake included). */
const OPEN_TIMEOUT_MS = 30_000;
/** A peer that vanished without closing (cable, partition) is noticed by TCP keepalive. */
const KEEPALIVE_MS = 5_000;

export function streamPath(kind: StreamKind, vmId: string): string {
  return `/stream/${kind}?vm=${encodeURIComponent(vmId)}`;
}

/** The kind and VM of an upgrade request's path, or null. */
export function parseStreamPath(url: string | undefined): { kind: StreamKind; vmId: string } | null {
  const m = /^\/stream\/(serial|vnc)\?vm=([^&]+)$/.exec(url ?? '');
  if (!m) return null;
  try {
    return { kind: m[1] as StreamKind, vmId: decodeURIComponent(m[2]!) };
  } catch {
    return null;
  }
}

/** The owner answers an upgrade: 101 and the socket to `accept`, or the error as a JSON body. */
export async function answerUpgrade(
  socket: Duplex,
  head: Buffer,
  open: () => ReturnType<PeerStreamOpen>,
  log?: (line: string) => void,
): Promise<void> {
  let accept: (socket: Duplex) => void;
  try {
    accept = await open();
  } catch (err) {
    const e = err as Partial<CorralError>;
    refuseUpgrade(socket, 409, { code: (e.code as ErrorCode) ?? 'failed', message: e.message ?? String(err), field: e.field });
    return;
  }
  if (socket.destroyed) return;
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${UPGRADE}\r\n\r\n`);
  if (head.length) socket.unshift(head);
  (socket as TLSSocket).setKeepAlive?.(true, KEEPALIVE_MS);
  socket.on('error', (err) => log?.(`peer console stream: ${err.message}`));
  accept(socket);
}

export function refuseUpgrade(socket: Duplex, status: number, error: ApiError): void {
  const body = JSON.stringify({ error });
  const text = status === 403 ? 'Forbidden' : status === 404 ? 'Not Found' : 'Conflict';
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** The caller's side: opens a console of `vmId` on `host`; rejects with what the owner answered. */
export function openPeerStream(
  host: HostRecord,
  tls: { ca: Buffer; cert: Buffer; key: Buffer },
  kind: StreamKind,
  vmId: string,
): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: host.address,
      port: host.ports.peer,
      path: streamPath(kind, vmId),
      method: 'GET',
      agent: false,
      ...tls,
      headers: { Connection: 'Upgrade', Upgrade: UPGRADE },
      timeout: OPEN_TIMEOUT_MS,
    });
    req.on('upgrade', (_res, socket: TLSSocket, head: Buffer) => {
      socket.setTimeout(0);
      socket.setKeepAlive(true, KEEPALIVE_MS);
      if (head.length) socket.unshift(head);
      resolve(socket);
    });
    req.on('response', (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d.slice(0, 4096)));
      res.on('end', () => {
        let e: ApiError | undefined;
        try {
          e = (JSON.parse(text) as { error?: ApiError }).error;
        } catch {
          // not ours: reported by status below
        }
        reject(
          e
            ? new CorralError(e.code, e.message, e.field)
            : new CorralError('failed', `host "${host.name}" refused the console (HTTP ${res.statusCode})`),
        );
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => reject(new CorralError('failed', `host "${host.name}" (${host.address}) cannot be reached: ${err.message}`)));
    req.end();
  });
}
