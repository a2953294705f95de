// `corral serve`: the headless host. Serves the UI and the API (a WebSocket) on loopback unless
// told otherwise; beyond loopback over HTTPS by default. Who may do what is decided by the
// dispatcher from the identity auth.ts finds (a login, an API token or the printed token);
// Host and Origin are checked so another web page (or a DNS-rebinding one) cannot drive it.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Identity, ResponseMessage } from '../core/api/contract.js';
import { badRequest } from '../core/api/dispatcher.js';
import { Host } from '../core/host/host.js';
import { keepServingOnErrors } from '../core/host/last-resort.js';
import { requestUrl } from '../core/security.js';
import { atLeast } from '../core/api/roles.js';
import { Auth, peerAddress } from './auth.js';
import { allowedNames, hostAllowed, isLoopbackBind } from './host-check.js';
import { guestsOnExit } from './machine-shutdown.js';
import { serveStatic } from './static.js';
import { loadTls, selfSignedTls, type TlsMaterial } from './tls.js';
import { handleUpload, isUpload } from './upload.js';

export interface ServeOptions {
  dataDir: string;
  listen?: string;
  env?: NodeJS.ProcessEnv;
  /** Where the built UI lives. */
  uiDir?: string;
  /** The user's certificate and key (PEM files); without them, a self-signed one beyond loopback. */
  tlsCert?: string;
  tlsKey?: string;
  /** Plain HTTP even beyond loopback (warned about). */
  noTls?: boolean;
  /** Host names clients may use beyond loopback (default: this machine's hostnames and the listen address). */
  allowHosts?: string[];
  /** An etcd the user runs: its client URLs, and the PEM files of its CA and this host's client certificate. */
  etcd?: { endpoints: string[]; ca?: string; cert?: string; key?: string };
}

const DEFAULT_PORT = 7420;
/** How long `corral serve` may take to close after SIGINT/SIGTERM before it just exits. */
const STOP_GRACE_MS = 15_000;

export function parseListen(spec: string | undefined): { host: string; port: number } {
  if (!spec) return { host: '127.0.0.1', port: DEFAULT_PORT };
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:[\]]+)):(\d+)$/.exec(spec) ?? /^()()(\d+)$/.exec(spec);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new Error(`--listen must be HOST:PORT (e.g. 127.0.0.1:${DEFAULT_PORT}), not "${spec}"`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

export interface RunningServer {
  url: string;
  token: string;
  port: number;
  /** The served certificate's SHA-256 fingerprint; null over plain HTTP. */
  fingerprint: string | null;
  host: Host;
  close(opts?: { stopGuests?: boolean }): Promise<void>;
}

function chooseTls(opts: ServeOptions, bindHost: string, names: Set<string>): TlsMaterial | null {
  if (opts.tlsCert || opts.tlsKey) {
    if (opts.noTls) throw new Error('--no-tls cannot be given with --tls-cert/--tls-key');
    if (!opts.tlsCert || !opts.tlsKey) throw new Error(`${opts.tlsCert ? '--tls-key' : '--tls-cert'} is needed too`);
    return loadTls(opts.tlsCert, opts.tlsKey);
  }
  if (opts.noTls || isLoopbackBind(bindHost)) return null;
  return selfSignedTls(path.join(opts.dataDir, 'tls'), [...names]);
}

export async function startServer(opts: ServeOptions, log: (s: string) => void = () => undefined): Promise<RunningServer> {
  const env = opts.env ?? process.env;
  const { host: bindHost, port: wantPort } = parseListen(opts.listen);
  const token = env.CORRAL_TOKEN && env.CORRAL_TOKEN.length >= 16 ? env.CORRAL_TOKEN : randomBytes(24).toString('base64url');
  const uiDir = opts.uiDir ?? path.join(__dirname, '..', '..', 'renderer');
  const names = allowedNames(bindHost, opts.allowHosts);
  const tls = chooseTls(opts, bindHost, names);

  // checked before the host starts: a typo in a path is said at once, not when the cluster starts
  const etcd = opts.etcd && (await import('../core/cluster/external-etcd.js')).checkExternalEtcd(opts.etcd);
  const host = await Host.start({ dataDir: opts.dataDir, kind: 'corral serve', env, log, etcd });
  const auth = new Auth({ accounts: host.accounts, token, secure: tls !== null });
  let port = wantPort;
  const security: Record<string, string> = tls ? { 'strict-transport-security': 'max-age=31536000' } : {};

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    for (const [k, v] of Object.entries(security)) res.setHeader(k, v);
    if (!hostAllowed(req.headers.host, names, port, tls !== null)) {
      res.writeHead(421, { 'content-type': 'text/plain' }).end('Misdirected request: unexpected Host header (see --allow-host)\n');
      return;
    }
    const url = requestUrl(req.url);
    if (!url) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('Bad request target\n');
      return;
    }
    if (url.pathname === '/api/ping') {
      // lets the UI tell a wrong token (401) from a host that is down (no answer)
      res.writeHead(auth.identify(req).ok ? 204 : 401, { 'cache-control': 'no-store' }).end();
      return;
    }
    if (isUpload(url.pathname)) {
      // another site's page cannot send it (no CORS answer), and must not even try
      const who = sameOrigin(req.headers.origin, req.headers.host, tls !== null) ? auth.identify(req) : null;
      const refusal = !who?.ok ? 'not authorized' : atLeast(who.identity.role, 'operator') ? null : 'uploads need the operator role';
      if (refusal || !who?.ok) {
        res.writeHead(refusal === 'not authorized' ? 401 : 403, { 'content-type': 'application/json', connection: 'close' });
        res.end(JSON.stringify({ error: { code: refusal === 'not authorized' ? 'bad-request' : 'forbidden', message: refusal } }));
        return;
      }
      void handleUpload(host, req, res, url.pathname, { identity: who.identity, address: peerAddress(req) });
      return;
    }
    if (url.pathname === '/api/tls' && req.method === 'GET') {
      res
        .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        .end(JSON.stringify({ fingerprint: tls?.fingerprint ?? null, selfSigned: tls?.selfSigned ?? false }));
      return;
    }
    if (auth.handleHttp(req, res, url.pathname)) return;
    serveStatic(uiDir, req, res);
  };
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, onRequest) : http.createServer(onRequest);

  const wss = new WebSocketServer({ noServer: true, maxPayload: 2 * 1024 * 1024 });
  server.on('upgrade', (req, socket, head) => {
    const refuse = (status: number, why: string) => {
      socket.end(`HTTP/1.1 ${status} ${why}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    const url = requestUrl(req.url);
    if (!url) return refuse(400, 'Bad Request');
    if (url.pathname !== '/api' && url.pathname !== '/vnc') return refuse(404, 'Not Found');
    if (!hostAllowed(req.headers.host, names, port, tls !== null)) return refuse(421, 'Misdirected Request');
    // browsers always send Origin: it must be this server's own page
    if (!sameOrigin(req.headers.origin, req.headers.host, tls !== null)) return refuse(403, 'Forbidden');
    // the console carries a one-shot ticket that only an authorized API session can get
    if (url.pathname === '/vnc') return host.vncProxy.handleUpgrade(req, socket, head);
    const who = auth.identify(req);
    if (!who.ok) return refuse(401, 'Unauthorized');
    wss.handleUpgrade(req, socket, head, (ws) => serveSocket(ws, who.identity, who.login, peerAddress(req)));
  });

  function serveSocket(ws: WebSocket, identity: Identity, login: string | null, address: string | null): void {
    const session = host.session(
      'ws',
      (event, payload) => {
        if (ws.readyState !== ws.OPEN) return;
        ws.send(JSON.stringify({ event, payload }));
      },
      () => ws.bufferedAmount,
      { identity, address },
    );
    // logout, expiry or the user's removal ends the connection (4401: log in again)
    const detach = auth.attach(login, () => ws.close(4401, 'logged out'));
    const reply = (r: ResponseMessage) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(r));
    };
    ws.on('message', (raw, isBinary) => {
      if (!auth.touch(login)) return ws.close(4401, 'logged out');
      if (isBinary) return reply(badRequest(0, 'binary frames are not accepted; send JSON text'));
      host.dispatcher
        .handleText(session, raw.toString())
        .then(reply)
        .catch((err: unknown) => log(`error answering a WebSocket request: ${String(err)}`));
    });
    const end = () => {
      detach();
      session.close();
    };
    ws.on('close', end);
    ws.on('error', end);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      auth.close();
      void host.close();
      reject(
        err.code === 'EADDRINUSE' ? new Error(`${bindHost}:${wantPort} is already in use; pick another with --listen HOST:PORT`) : err,
      );
    });
    server.listen(wantPort, bindHost, () => resolve());
  });
  port = (server.address() as { port: number }).port;
  const shownHost = bindHost.includes(':') ? `[${bindHost}]` : bindHost === '0.0.0.0' ? '127.0.0.1' : bindHost;
  const url = `${tls ? 'https' : 'http'}://${shownHost}:${port}/#token=${token}`;

  return {
    url,
    token,
    port,
    fingerprint: tls?.fingerprint ?? null,
    host,
    async close(o = {}) {
      auth.close();
      for (const c of wss.clients) c.terminate();
      host.vncProxy.close(); // open consoles would otherwise hold server.close() open
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await host.close({ stopGuests: o.stopGuests });
    },
  };
}

/** No Origin (not a browser), or this server's own page. */
function sameOrigin(origin: string | undefined, host: string | undefined, tls: boolean): boolean {
  return origin === undefined || origin === `${tls ? 'https' : 'http'}://${host}`;
}

/** The `corral serve` command: runs until SIGINT/SIGTERM; guests keep running after it unless the machine is shutting down. */
export async function runServe(opts: ServeOptions): Promise<number> {
  const log = (s: string) => process.stderr.write(s + '\n');
  const srv = await startServer(opts, log);
  keepServingOnErrors(log);
  // a terminal or pipe that went away makes writes fail: the host serves on without them
  for (const s of [process.stdout, process.stderr]) s.on('error', () => undefined);
  const base = srv.url.replace(/#.*$/, '');
  const lines = [`Corral is serving ${opts.dataDir}`, `Open: ${srv.url}`];
  if (srv.fingerprint) lines.push(`TLS certificate SHA-256 fingerprint: ${srv.fingerprint}`);
  if (srv.host.accounts.hasUsers()) {
    lines.push(`Users log in at ${base}; the URL above (the owner's) works only from this machine.`);
  } else {
    lines.push(
      'No users yet: whoever has the URL above acts as the owner. To require logins, create the first admin:',
      `  corral user add NAME --role admin${opts.dataDir === process.env.CORRAL_DATA ? '' : ` --data ${opts.dataDir}`}`,
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
  if (!srv.fingerprint && !isLoopbackBind(parseListen(opts.listen).host)) {
    log('warning: --no-tls: listening beyond loopback without TLS; passwords and tokens travel in clear text on your network');
  }
  return await new Promise<number>((resolve) => {
    const stop = async (sig: string) => {
      const { action, why } = await guestsOnExit(opts.env);
      log(action === 'stop' ? `${sig}: ${why}: stopping the guests in order` : `${sig}: leaving guests running and exiting (${why})`);
      // a close stuck on some connection must not keep the process alive; guests are detached
      // and the next host takes over a lock whose owner is gone (an ordered stop of the guests
      // takes as long as they need: systemd's stop timeout bounds that)
      if (action !== 'stop')
        setTimeout(() => {
          log(`${sig}: shutting down took over ${STOP_GRACE_MS / 1000} s; exiting anyway`);
          process.exit(1);
        }, STOP_GRACE_MS).unref();
      srv.close({ stopGuests: action === 'stop' }).then(
        () => resolve(0),
        (err: unknown) => {
          log(`error while shutting down: ${String(err)}`);
          resolve(1);
        },
      );
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
  });
}
