// Who is at the other end of an HTTP request or WebSocket of `corral serve`: a browser login
// (a cookie), an API token, or the token serve prints (the owner). Also the login, logout and
// "who am I" endpoints, the login sessions (idle and absolute expiry) and the rate limit.
//
// The printed token: with no users yet it is the owner from anywhere, as before accounts.
// Once users exist it is honoured only from this machine (a loopback peer), so a URL shown
// on a screen or left in a shell history is no key to the host from the network.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import type { Identity } from '../core/api/contract.js';
import { OWNER } from '../core/api/dispatcher.js';
import type { Accounts } from '../core/auth/accounts.js';
import { ADDRESS_LIMITS, RateLimiter, USER_LIMITS } from './rate-limit.js';

export const COOKIE = 'corral_session';

export interface AuthOptions {
  accounts: Accounts;
  /** The token `corral serve` prints. */
  token: string;
  /** Cookies get `Secure` when the page is served over TLS. */
  secure: boolean;
  idleMs?: number;
  absoluteMs?: number;
  now?: () => number;
}

interface Login {
  identity: Identity;
  createdAt: number;
  lastSeen: number;
  /** The WebSockets opened with this login: logout closes them. */
  closers: Set<() => void>;
}

export type Who = { ok: true; identity: Identity; login: string | null } | { ok: false; status: number; message: string };

const DEFAULT_IDLE_MS = 60 * 60_000;
const DEFAULT_ABSOLUTE_MS = 12 * 60 * 60_000;

export function isLoopbackAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  const a = addr.replace(/^::ffff:/, '');
  return a === '::1' || /^127\.\d+\.\d+\.\d+$/.test(a);
}

export function peerAddress(req: http.IncomingMessage): string | null {
  const a = req.socket.remoteAddress;
  return a ? a.replace(/^::ffff:/, '') : null;
}

function sameText(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

function cookieOf(req: http.IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return null;
}

export class Auth {
  private logins = new Map<string, Login>();
  private readonly byUser: RateLimiter;
  private readonly byAddress: RateLimiter;
  private readonly now: () => number;
  private readonly idleMs: number;
  private readonly absoluteMs: number;
  private readonly sweep: NodeJS.Timeout;
  private readonly unlisten: () => void;

  constructor(private readonly o: AuthOptions) {
    this.now = o.now ?? Date.now;
    this.byUser = new RateLimiter(USER_LIMITS, this.now);
    this.byAddress = new RateLimiter(ADDRESS_LIMITS, this.now);
    this.idleMs = o.idleMs ?? DEFAULT_IDLE_MS;
    this.absoluteMs = o.absoluteMs ?? DEFAULT_ABSOLUTE_MS;
    this.sweep = setInterval(() => this.endExpired(), 30_000).unref();
    // a removed user, or one whose password changed, is logged out everywhere
    this.unlisten = o.accounts.onUserChanged((name) => {
      for (const [id, l] of this.logins) if (l.identity.user?.toLowerCase() === name.toLowerCase()) this.end(id);
    });
  }

  close(): void {
    clearInterval(this.sweep);
    this.unlisten();
  }

  /** Who makes this request: a login cookie, then a bearer token or `?token=`. */
  identify(req: http.IncomingMessage): Who {
    const cookie = cookieOf(req, COOKIE);
    if (cookie) {
      const id = this.loginId(cookie);
      const l = this.logins.get(id);
      if (l && this.live(id, l)) {
        l.lastSeen = this.now();
        return { ok: true, identity: l.identity, login: id };
      }
    }
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    const given = bearer ?? new URL(req.url ?? '/', 'http://x').searchParams.get('token');
    if (!given) return { ok: false, status: 401, message: 'log in first' };
    if (sameText(given, this.o.token)) {
      if (!this.o.accounts.hasUsers() || isLoopbackAddress(req.socket.remoteAddress)) return { ok: true, identity: OWNER, login: null };
      return { ok: false, status: 401, message: 'this host has users: log in, or use an API token (corral token create)' };
    }
    const identity = this.o.accounts.verifyToken(given);
    return identity ? { ok: true, identity, login: null } : { ok: false, status: 401, message: 'unknown, revoked or expired token' };
  }

  /** Ties a WebSocket to its login, so that logout and expiry close it. */
  attach(login: string | null, close: () => void): () => void {
    const l = login ? this.logins.get(login) : undefined;
    l?.closers.add(close);
    return () => l?.closers.delete(close);
  }

  /** Still logged in (a WebSocket message counts as activity). */
  touch(login: string | null): boolean {
    if (!login) return true;
    const l = this.logins.get(login);
    if (!l || !this.live(login, l)) return false;
    l.lastSeen = this.now();
    return true;
  }

  /** /api/login, /api/logout and /api/me; false for any other path. */
  handleHttp(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): boolean {
    if (pathname === '/api/me' && req.method === 'GET') {
      const who = this.identify(req);
      json(res, 200, { users: this.o.accounts.hasUsers(), identity: who.ok ? who.identity : null });
      return true;
    }
    if (pathname !== '/api/login' && pathname !== '/api/logout') return false;
    if (req.method !== 'POST') {
      json(res, 405, { error: 'use POST' });
      return true;
    }
    // a form on another site must not log this browser in or out
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${req.headers.host}` && origin !== `https://${req.headers.host}`) {
      json(res, 403, { error: 'cross-origin request refused' });
      return true;
    }
    if (pathname === '/api/logout') {
      const cookie = cookieOf(req, COOKIE);
      if (cookie) this.end(this.loginId(cookie));
      res.writeHead(204, { 'set-cookie': this.cookie('', 0), 'cache-control': 'no-store' }).end();
      return true;
    }
    void readJson(req).then(
      (body) => this.login(req, res, body),
      (err: Error) => json(res, 400, { error: err.message }),
    );
    return true;
  }

  private async login(req: http.IncomingMessage, res: http.ServerResponse, body: unknown): Promise<void> {
    const b = (body ?? {}) as Record<string, unknown>;
    if (typeof b.user !== 'string' || !b.user) return json(res, 400, { error: 'user is required', field: 'user' });
    if (typeof b.password !== 'string' || !b.password) return json(res, 400, { error: 'password is required', field: 'password' });
    const user = [b.user.toLowerCase()];
    const addr = [peerAddress(req) ?? '?'];
    const wait = () => Math.max(this.byUser.wait(user), this.byAddress.wait(addr));
    if (wait() > 0) return this.tooMany(res, wait());
    const identity = await this.o.accounts.login(b.user, b.password);
    if (!identity) {
      this.byUser.failed(user);
      this.byAddress.failed(addr);
      if (wait() > 0) return this.tooMany(res, wait(), 'wrong user name or password; ');
      return json(res, 401, { error: 'wrong user name or password' });
    }
    // the address keeps its count: one good account must not reset a guesser's
    this.byUser.succeeded(user);
    const secret = randomBytes(32).toString('base64url');
    const now = this.now();
    this.logins.set(this.loginId(secret), { identity, createdAt: now, lastSeen: now, closers: new Set() });
    res.setHeader('set-cookie', this.cookie(secret, Math.floor(this.absoluteMs / 1000)));
    json(res, 200, { identity });
  }

  private tooMany(res: http.ServerResponse, waitMs: number, prefix = ''): void {
    const s = Math.ceil(waitMs / 1000);
    res.setHeader('retry-after', String(s));
    json(res, 429, { error: `${prefix}too many failed logins: try again in ${s} s`, retryAfterSec: s });
  }

  /** Logins are kept by a hash of the cookie, so a heap dump does not hand them out. */
  private loginId(secret: string): string {
    return createHash('sha256').update(secret).digest('hex');
  }

  private live(id: string, l: Login): boolean {
    const now = this.now();
    if (now - l.lastSeen < this.idleMs && now - l.createdAt < this.absoluteMs) return true;
    this.end(id);
    return false;
  }

  private end(id: string): void {
    const l = this.logins.get(id);
    if (!l) return;
    this.logins.delete(id);
    l.closers.forEach((fn) => fn());
  }

  private endExpired(): void {
    for (const [id, l] of this.logins) this.live(id, l);
  }

  private cookie(value: string, maxAgeSec: number): string {
    return `${COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSec}${this.o.secure ? '; Secure' : ''}`;
  }
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}

function readJson(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 16 * 1024) {
        reject(new Error('request too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'));
      } catch {
        reject(new Error('the body must be JSON: {"user": …, "password": …}'));
      }
    });
    req.on('error', reject);
  });
}
