// The host-to-host API: HTTPS on its own port that takes only clients showing a certificate from
// the cluster CA (requestCert + rejectUnauthorized, the CA as the only root), and of those only
// hosts still in the cluster: a revoked host (one that left) is cut off at each new connection
// and refused at each request. It carries the contract (the dispatcher) as the calling host.
import fs from 'node:fs';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { ResponseMessage } from '../api/contract.js';
import { hostIdOf, type CertPaths } from './ca.js';
import { answerUpgrade, parseStreamPath, refuseUpgrade, type PeerStreamOpen } from './peer-stream.js';

export interface PeerServerDeps {
  certs: CertPaths;
  /** Whether a host id may call: in the cluster and not revoked. */
  admitted: (hostId: string) => { ok: true; name: string } | { ok: false; why: string };
  /** Runs one call of the contract as host `name` (an admin) from `address`. */
  dispatch: (name: string, address: string | null, method: string, args: unknown) => Promise<ResponseMessage>;
  log?: (line: string) => void;
  /** Consoles of this host's VMs for another host (an upgrade to a raw stream); none without it. */
  openStream?: PeerStreamOpen;
}

const MAX_BODY = 4 * 1024 * 1024;

export function readBody(req: import('node:http').IncomingMessage, max = MAX_BODY): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > max) {
        reject(new Error('request too large'));
        req.destroy();
      } else parts.push(d);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

export function listenPeerApi(deps: PeerServerDeps, host: string, port: number): Promise<https.Server> {
  const { certs } = deps;
  const server = https.createServer(
    {
      ca: fs.readFileSync(certs.ca),
      cert: fs.readFileSync(certs.cert),
      key: fs.readFileSync(certs.key),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      const id = hostIdOf(socket.getPeerCertificate());
      const who = id ? deps.admitted(id) : ({ ok: false, why: 'no host id in the certificate' } as const);
      const send = (status: number, body: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (!who.ok) return send(403, { id: 0, error: { code: 'forbidden', message: who.why } });
      if (req.method !== 'POST' || req.url !== '/call')
        return send(404, { id: 0, error: { code: 'bad-request', message: 'POST /call only' } });
      readBody(req).then(
        async (text) => {
          let msg: { method?: unknown; args?: unknown };
          try {
            msg = JSON.parse(text) as typeof msg;
          } catch {
            return send(400, { id: 0, error: { code: 'bad-request', message: 'not JSON' } });
          }
          const r = await deps.dispatch(who.name, socket.remoteAddress ?? null, String(msg.method), msg.args);
          send(200, r);
        },
        (err: Error) => send(413, { id: 0, error: { code: 'bad-request', message: err.message } }),
      );
    },
  );
  // a host revoked since its connection was opened must not keep using it
  server.on('secureConnection', (socket: TLSSocket) => {
    const id = hostIdOf(socket.getPeerCertificate());
    const who = id ? deps.admitted(id) : { ok: false as const, why: 'no host id' };
    if (!who.ok) {
      deps.log?.(`peer API: refused ${socket.remoteAddress}: ${who.why}`);
      socket.destroy();
    }
  });
  // a console stream: the same admission as a call, then the socket is the console's
  server.on('upgrade', (req: import('node:http').IncomingMessage, socket: TLSSocket, head: Buffer) => {
    const id = hostIdOf(socket.getPeerCertificate());
    const who = id ? deps.admitted(id) : ({ ok: false, why: 'no host id in the certificate' } as const);
    if (!who.ok) return refuseUpgrade(socket, 403, { code: 'forbidden', message: who.why });
    const target = parseStreamPath(req.url);
    const open = deps.openStream;
    if (!target || !open) return refuseUpgrade(socket, 404, { code: 'bad-request', message: 'no such stream' });
    void answerUpgrade(socket, head, () => open(who.name, socket.remoteAddress ?? null, target.kind, target.vmId), deps.log);
  });
  server.on('tlsClientError', (err, socket) => deps.log?.(`peer API: TLS refused ${socket.remoteAddress}: ${err.message}`));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
