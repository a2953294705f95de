// Users and API tokens as rows. Hashing and checks live in core/auth; this file only stores.
import type { Role, TokenInfo, UserInfo } from '../api/contract.js';
import { makeDurable, type Db } from './db.js';

interface UserRow {
  name: string;
  role: Role;
  password: string;
  created_at: number;
}
interface TokenRow {
  id: string;
  user: string;
  role: Role;
  secret_hash: string;
  created_at: number;
  expires_at: number | null;
  last_used: number | null;
}

export interface StoredUser extends UserInfo {
  password: string;
}
export interface StoredToken extends TokenInfo {
  secretHash: string;
}

const user = (r: UserRow): StoredUser => ({ name: r.name, role: r.role, password: r.password, createdAt: r.created_at });
const token = (r: TokenRow): StoredToken => ({
  id: r.id,
  user: r.user,
  role: r.role,
  secretHash: r.secret_hash,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  lastUsed: r.last_used,
});

export class AccountRepo {
  private readonly q;

  constructor(private readonly db: Db) {
    this.q = {
      count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM users'),
      users: db.prepare<[], UserRow>('SELECT * FROM users ORDER BY name'),
      user: db.prepare<[string], UserRow>('SELECT * FROM users WHERE name = ?'),
      addUser: db.prepare('INSERT INTO users (name, role, password, created_at) VALUES (?, ?, ?, ?)'),
      removeUser: db.prepare('DELETE FROM users WHERE name = ?'),
      setPassword: db.prepare('UPDATE users SET password = ? WHERE name = ?'),
      tokens: db.prepare<[], TokenRow>('SELECT * FROM api_tokens ORDER BY created_at, id'),
      token: db.prepare<[string], TokenRow>('SELECT * FROM api_tokens WHERE id = ?'),
      addToken: db.prepare('INSERT INTO api_tokens (id, user, role, secret_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)'),
      removeToken: db.prepare('DELETE FROM api_tokens WHERE id = ?'),
      usedToken: db.prepare('UPDATE api_tokens SET last_used = ? WHERE id = ?'),
    };
  }

  userCount(): number {
    return this.q.count.get()!.n;
  }
  users(): StoredUser[] {
    return this.q.users.all().map(user);
  }
  user(name: string): StoredUser | undefined {
    const r = this.q.user.get(name);
    return r && user(r);
  }
  addUser(name: string, role: Role, password: string, at: number): void {
    this.q.addUser.run(name, role, password, at);
    makeDurable(this.db);
  }
  removeUser(name: string): boolean {
    return this.durably(this.q.removeUser.run(name).changes > 0);
  }
  setPassword(name: string, password: string): boolean {
    return this.durably(this.q.setPassword.run(password, name).changes > 0);
  }

  tokens(): StoredToken[] {
    return this.q.tokens.all().map(token);
  }
  token(id: string): StoredToken | undefined {
    const r = this.q.token.get(id);
    return r && token(r);
  }
  addToken(t: Omit<StoredToken, 'lastUsed'>): void {
    this.q.addToken.run(t.id, t.user, t.role, t.secretHash, t.createdAt, t.expiresAt);
    makeDurable(this.db);
  }
  removeToken(id: string): boolean {
    return this.durably(this.q.removeToken.run(id).changes > 0);
  }
  private durably<T>(result: T): T {
    makeDurable(this.db);
    return result;
  }

  tokenUsed(id: string, at: number): void {
    this.q.usedToken.run(at, id);
  }
}
