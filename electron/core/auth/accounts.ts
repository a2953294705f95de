// Local accounts: users with a role and a password, and API tokens acting as a user. The
// transports ask it who a login or a token is; handlers for user.*, token.* call it.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { CorralError } from '../api/dispatcher.js';
import type { Identity, Role, TokenInfo, UserInfo } from '../api/contract.js';
import { atLeast } from '../api/roles.js';
import type { AccountRepo } from '../store/account-repo.js';
import { dummyHash, hashPassword, verifyPassword } from './passwords.js';

const TOKEN_RE = /^corral_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

const sha256 = (s: string) => createHash('sha256').update(s).digest();

export class Accounts {
  /** Called with a user's name when they are removed or their password changes: their logins end. */
  private changeListeners = new Set<(name: string) => void>();

  constructor(
    private readonly repo: AccountRepo,
    private readonly now: () => number = Date.now,
  ) {}

  hasUsers(): boolean {
    return this.repo.userCount() > 0;
  }

  onUserChanged(fn: (name: string) => void): () => void {
    this.changeListeners.add(fn);
    return () => this.changeListeners.delete(fn);
  }

  users(): UserInfo[] {
    return this.repo.users().map(({ name, role, createdAt }) => ({ name, role, createdAt }));
  }

  async addUser(name: string, role: Role, password: string): Promise<UserInfo> {
    if (this.repo.user(name)) throw new CorralError('conflict', `a user named "${name}" already exists`, 'name');
    const hash = await hashPassword(password);
    const at = this.now();
    this.repo.addUser(name, role, hash, at);
    return { name: this.repo.user(name)!.name, role, createdAt: at };
  }

  removeUser(name: string): void {
    if (!this.repo.removeUser(name)) throw this.noUser(name);
    this.changed(name);
  }

  async setPassword(name: string, password: string): Promise<void> {
    if (!this.repo.user(name)) throw this.noUser(name);
    this.repo.setPassword(name, await hashPassword(password));
    this.changed(name);
  }

  /** The identity a user name and password log in as, or null. Takes as long for an unknown name. */
  async login(name: string, password: string): Promise<Identity | null> {
    const u = this.repo.user(name);
    const ok = await verifyPassword(password, u?.password ?? (await dummyHash()));
    return u && ok ? { kind: 'user', user: u.name, role: u.role } : null;
  }

  /** The user's current identity (a removed user has none): checked again on every new connection. */
  current(name: string): Identity | null {
    const u = this.repo.user(name);
    return u ? { kind: 'user', user: u.name, role: u.role } : null;
  }

  createToken(user: string, role: Role, expiresSec?: number): TokenInfo & { token: string } {
    const u = this.repo.user(user);
    if (!u) throw this.noUser(user, 'user');
    if (!atLeast(u.role, role)) {
      const reason = `must be at most ${u.role}, the role of ${u.name}`;
      throw new CorralError('invalid-argument', `invalid argument "role": ${reason}`, 'role', { reason });
    }
    const id = randomBytes(6).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const createdAt = this.now();
    const info = { id, user: u.name, role, createdAt, expiresAt: expiresSec ? createdAt + expiresSec * 1000 : null };
    this.repo.addToken({ ...info, secretHash: sha256(secret).toString('hex') });
    return { ...info, lastUsed: null, token: `corral_${id}_${secret}` };
  }

  tokens(): TokenInfo[] {
    return this.repo.tokens().map(({ secretHash: _s, ...t }) => t);
  }

  revokeToken(id: string): void {
    if (!this.repo.removeToken(id)) throw new CorralError('not-found', `no token with id "${id}"`, 'id');
  }

  /** Who an API token acts as: its role, capped by its user's role now; null when unknown, revoked or expired. */
  verifyToken(text: string): Identity | null {
    const m = TOKEN_RE.exec(text);
    if (!m) return null;
    const t = this.repo.token(m[1]!);
    if (!t || !timingSafeEqual(sha256(m[2]!), Buffer.from(t.secretHash, 'hex'))) return null;
    const now = this.now();
    if (t.expiresAt !== null && t.expiresAt <= now) return null;
    const u = this.repo.user(t.user);
    if (!u) return null;
    this.repo.tokenUsed(t.id, now);
    return { kind: 'token', user: u.name, role: atLeast(u.role, t.role) ? t.role : u.role };
  }

  private changed(name: string): void {
    this.changeListeners.forEach((fn) => fn(name));
  }

  private noUser(name: string, field = 'name'): CorralError {
    return new CorralError('not-found', `no user named "${name}"`, field);
  }
}
