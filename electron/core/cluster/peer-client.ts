// Calls another host's API over mutual TLS: this host's certificate as the client's, the cluster
// CA as the only trusted root. What a peer answers comes back as the same CorralError a local
// call would throw, so a forwarded action fails exactly like a local one.
import fs from 'node:fs';
import https from 'node:https';
import { CorralError } from '../api/dispatcher.js';
import type { ApiError, Args, MethodName, Result } from '../api/contract.js';
import type { CertPaths } from './ca.js';
import type { HostRecord } from './hosts.js';
import { openPeerStream, type StreamKind } from './peer-stream.js';

/** The longest a forwarded call may take: a vm.stop waits for the guest (its own timeout is at most 600 s). */
const CALL_TIMEOUT_MS = 15 * 60_000;

export class PeerClient {
  private readonly agent: https.Agent;
  private readonly tls: { ca: Buffer; cert: Buffer; key: Buffer };

  constructor(
    certs: CertPaths,
    /** The record of a host by id (from etcd), or null when it is not in the cluster. */
    private readonly hostOf: (hostId: string) => HostRecord | null,
  ) {
    this.tls = { ca: fs.readFileSync(certs.ca), cert: fs.readFileSync(certs.cert), key: fs.readFileSync(certs.key) };
    this.agent = new https.Agent({ keepAlive: true, ...this.tls });
  }

  /** Opens a console stream of a VM on host `hostId` (mutual TLS, like a call). */
  async stream(hostId: string, kind: StreamKind, vmId: string): Promise<import('node:stream').Duplex> {
    const host = this.hostOf(hostId);
    if (!host) throw new CorralError('not-found', `host ${hostId} is not in the cluster`);
    return await openPeerStream(host, this.tls, kind, vmId);
  }

  /** Calls `method` on host `hostId` as this host (an admin there); throws what the peer answered. */
  async call<M extends MethodName>(hostId: string, method: M, args: Partial<Args<M>> | Record<string, unknown>): Promise<Result<M>> {
    const host = this.hostOf(hostId);
    if (!host) throw new CorralError('not-found', `host ${hostId} is not in the cluster`);
    const body = JSON.stringify({ method, args });
    const reply = await new Promise<{ result?: unknown; error?: ApiError }>((resolve, reject) => {
      const req = https.request(
        {
          host: host.address,
          port: host.ports.peer,
          method: 'POST',
          path: '/call',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          timeout: CALL_TIMEOUT_MS,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => (text += d));
          res.on('end', () => {
            try {
              resolve(JSON.parse(text) as { result?: unknown; error?: ApiError });
            } catch {
              reject(new Error(`host "${host.name}" answered ${res.statusCode}: ${text.slice(0, 200)}`));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (err) =>
        reject(new CorralError('failed', `host "${host.name}" (${host.address}) cannot be reached: ${err.message}`)),
      );
      req.end(body);
    });
    if (reply.error) {
      const e = reply.error;
      throw new CorralError(e.code, e.message, e.field, { reason: e.reason, limit: e.limit, current: e.current });
    }
    return reply.result as Result<M>;
  }

  close(): void {
    this.agent.destroy();
  }
}
