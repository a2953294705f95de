// `corral serve`: the headless host. Serves the UI over HTTP and the API over a WebSocket,
// on loopback unless told otherwise, behind a random token; Host and Origin are checked so
// another web page (or a DNS-rebinding one) cannot drive it.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { RequestMessage } from '../core/api/contract.js';
import { Host } from '../core/host/host.js';
import { guestsOnExit } from './machine-shutdown.js';
import { serveStatic } from './static.js';

export interface ServeOptions {
  dataDir: string;
  listen?: string;
  env?: NodeJS.ProcessEnv;
  /** Where the built UI lives. */
  uiDir?: string;
}

const DEFAULT_PORT = 7420;

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
  close(opts?: { stopGuests?: boolean }): Promise<void>;
}

export async function startServer(opts: ServeOptions, log: (s: string) => void = () => undefined): Promise<RunningServer> {
  const env = opts.env ?? process.env;
  const { host: bindHost, port: wantPort } = parseListen(opts.listen);
  const token = env.CORRAL_TOKEN && env.CORRAL_TOKEN.length >= 16 ? env.CORRAL_TOKEN : randomBytes(24).toString('base64url');
  const uiDir = opts.uiDir ?? path.join(__dirname, '..', '..', 'renderer');

  const host = await Host.start({ dataDir: opts.dataDir, kind: 'corral serve', env, log });
  let port = wantPort;
  const loopback = bindHost === '127.0.0.1' || bindHost === 'localhost' || bindHost === '::1';
  const hostAllowed = (h: string | undefined): boolean => {
    if (!h) return false;
    if (!loopback) return true; // reached by LAN names we cannot know; the token still guards the API
    return [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(h.toLowerCase());
  };

  const server = http.createServer((req, res) => {
    if (!hostAllowed(req.headers.host)) {
      res.writeHead(421, { 'content-type': 'text/plain' }).end('Misdirected request: unexpected Host header\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/api/ping') {
      // lets the UI tell a wrong token (401) from a host that is down (no answer)
      res.writeHead(tokenMatches(url.searchParams.get('token'), token) ? 204 : 401, { 'cache-control': 'no-store' }).end();
      return;
    }
    serveStatic(uiDir, req, res);
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: 2 * 1024 * 1024 });
  server.on('upgrade', (req, socket, head) => {
    const refuse = (status: number, why: string) => {
      socket.end(`HTTP/1.1 ${status} ${why}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/api' && url.pathname !== '/vnc') return refuse(404, 'Not Found');
    if (!hostAllowed(req.headers.host)) return refuse(421, 'Misdirected Request');
    const origin = req.headers.origin;
    // browsers always send Origin: it must be this server's own page
    if (origin !== undefined && origin !== `http://${req.headers.host}` && origin !== `https://${req.headers.host}`)
      return refuse(403, 'Forbidden');
    // the console carries a one-shot ticket that only an authenticated API session can get
    if (url.pathname === '/vnc') return host.vncProxy.handleUpgrade(req, socket, head);
    if (!tokenMatches(url.searchParams.get('token'), token)) return refuse(401, 'Unauthorized');
    wss.handleUpgrade(req, socket, head, (ws) => serveSocket(ws));
  });

  function serveSocket(ws: WebSocket): void {
    const session = host.session(
      'ws',
      (event, payload) => {
        if (ws.readyState !== ws.OPEN) return;
        ws.send(JSON.stringify({ event, payload }));
      },
      () => ws.bufferedAmount,
    );
    ws.on('message', (raw, isBinary) => {
      if (isBinary) return;
      let msg: RequestMessage;
      try {
        msg = JSON.parse(raw.toString()) as RequestMessage;
      } catch {
        ws.send(JSON.stringify({ id: 0, error: { code: 'bad-request', message: 'not JSON' } }));
        return;
      }
      void host.dispatcher.handle(session, msg).then((r) => ws.readyState === ws.OPEN && ws.send(JSON.stringify(r)));
    });
    ws.on('close', () => session.close());
    ws.on('error', () => session.close());
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      void host.close();
      reject(
        err.code === 'EADDRINUSE' ? new Error(`${bindHost}:${wantPort} is already in use; pick another with --listen HOST:PORT`) : err,
      );
    });
    server.listen(wantPort, bindHost, () => resolve());
  });
  port = (server.address() as { port: number }).port;
  const shownHost = bindHost.includes(':') ? `[${bindHost}]` : bindHost === '0.0.0.0' ? '127.0.0.1' : bindHost;
  const url = `http://${shownHost}:${port}/#token=${token}`;

  return {
    url,
    token,
    port,
    async close(o = {}) {
      for (const c of wss.clients) c.terminate();
      host.vncProxy.close(); // open consoles would otherwise hold server.close() open
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await host.close({ stopGuests: o.stopGuests });
    },
  };
}

function tokenMatches(given: string | null, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The `corral serve` command: runs until SIGINT/SIGTERM; guests keep running after it unless the machine is shutting down. */
export async function runServe(opts: ServeOptions): Promise<number> {
  const log = (s: string) => process.stderr.write(s + '\n');
  const srv = await startServer(opts, log);
  process.stdout.write(`Corral is serving ${opts.dataDir}\nOpen: ${srv.url}\n`);
  if (!/^http:\/\/(127\.0\.0\.1|\[::1\]|localhost):/.test(srv.url)) {
    log('warning: listening beyond loopback without TLS; the token travels in clear text on your network');
  }
  return await new Promise<number>((resolve) => {
    const stop = async (sig: string) => {
      const { action, why } = await guestsOnExit(opts.env);
      log(action === 'stop' ? `${sig}: ${why}: stopping the guests in order` : `${sig}: leaving guests running and exiting (${why})`);
      await srv.close({ stopGuests: action === 'stop' });
      resolve(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
  });
}
