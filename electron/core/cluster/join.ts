// Joining: the join port (server TLS with the host's cluster certificate; the joiner has none yet)
// shows the CA at GET /ca and takes POST /join {secret, csr, …}. The joiner first compares the
// CA's fingerprint with the one in its token and sends nothing until it matches; then it talks
// to the join port with that CA as its only root.
import fs from 'node:fs';
import https from 'node:https';
import { z } from 'zod';
import type { CertPaths } from './ca.js';
import { ClusterPorts } from './config.js';
import { readBody } from './peer-server.js';

export const JoinRequest = z.object({
  secret: z.string().max(100),
  csr: z.string().max(10_000),
  name: z.string().min(1).max(63),
  address: z.string().min(1).max(253),
  ports: ClusterPorts,
});
export type JoinRequest = z.infer<typeof JoinRequest>;

export const JoinAnswer = z.object({
  clusterId: z.string(),
  cert: z.string(),
  etcdRole: z.enum(['member', 'client', 'external']),
  endpoints: z.array(z.string()),
  initialCluster: z.string().optional(),
  /** The learner added for a new member: it promotes itself once its etcd caught up. */
  memberId: z.string().optional(),
});
export type JoinAnswer = z.infer<typeof JoinAnswer>;

/** A refusal the joiner shows as is. */
export class JoinRefused extends Error {}

export function listenJoin(
  certs: CertPaths,
  handle: (req: JoinRequest, from: string | null) => Promise<JoinAnswer>,
  host: string,
  port: number,
  log?: (line: string) => void,
): Promise<https.Server> {
  const ca = fs.readFileSync(certs.ca, 'utf8');
  const server = https.createServer({ cert: fs.readFileSync(certs.cert), key: fs.readFileSync(certs.key) }, (req, res) => {
    const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.method === 'GET' && req.url === '/ca') return send(200, { ca });
    if (req.method !== 'POST' || req.url !== '/join') return send(404, { error: 'GET /ca or POST /join' });
    readBody(req, 64 * 1024)
      .then(async (text) => {
        const parsed = JoinRequest.safeParse(JSON.parse(text));
        if (!parsed.success) return send(400, { error: `bad join request: ${parsed.error.issues[0]?.message}` });
        send(200, await handle(parsed.data, req.socket.remoteAddress ?? null));
      })
      .catch((err: Error) => {
        log?.(`join refused from ${req.socket.remoteAddress}: ${err.message}`);
        send(err instanceof JoinRefused ? 403 : 400, { error: err.message });
      });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

function request(url: URL, opts: https.RequestOptions, body?: string): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ...opts, timeout: 30_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) });
        } catch {
          reject(new Error(`${url.origin} is not a Corral join port (answered ${res.statusCode})`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => reject(new Error(`cannot reach ${url.origin}: ${err.message}`)));
    req.end(body);
  });
}

/** The CA the join port shows; nothing of the joiner's is sent (the certificate is not trusted yet). */
export async function fetchCa(base: URL): Promise<string> {
  const r = await request(new URL('/ca', base), { method: 'GET', rejectUnauthorized: false });
  const ca = (r.json as { ca?: unknown }).ca;
  if (typeof ca !== 'string') throw new Error(`${base.origin} did not show a cluster CA`);
  return ca;
}

/** Sends the join request to a join port whose certificate must come from `caPem`. */
export async function postJoin(base: URL, caPem: string, body: JoinRequest): Promise<JoinAnswer> {
  const text = JSON.stringify(body);
  // the join port's certificate names the address it was issued for; the CA is pinned, so the
  // name the user typed (a DNS name, another address of that host) need not be in it
  const r = await request(
    new URL('/join', base),
    {
      method: 'POST',
      ca: caPem,
      checkServerIdentity: () => undefined,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
    },
    text,
  );
  if (r.status !== 200) throw new JoinRefused(`the cluster refused to join: ${(r.json as { error?: string }).error ?? r.status}`);
  return JoinAnswer.parse(r.json);
}
