// Accounts against a real `corral serve` process and its real SQLite store: users made over the
// control socket, browser logins with a cookie, roles at the API, the login rate limit, logout,
// API tokens and the audit log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ArgsIn, AuditEntry, MethodName, Result } from '../../electron/core/api/contract';
import { tempDir, waitFor } from '../helpers';
import { corral, ServeProcess } from './serve-process';

const data = tempDir();
let serve: ServeProcess;
let base = '';

/** A WebSocket API client with the given headers (a cookie or a bearer token). */
class Client {
  closed: number | null = null;
  private nextId = 1;
  private pending = new Map<number, (m: { result?: unknown; error?: { code: string; message: string } }) => void>();
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as { id?: number };
      if (m.id !== undefined) this.pending.get(m.id)?.(m as never);
    });
    ws.on('close', (code) => (this.closed = code));
  }
  static open(headers: Record<string, string>, query = ''): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/api${query}`, { headers });
      ws.once('open', () => resolve(new Client(ws)));
      ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }
  call<M extends MethodName>(method: M, args: ArgsIn<M>): Promise<{ result?: Result<M>; error?: { code: string; message: string } }> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve as never);
      this.ws.send(JSON.stringify({ id, method, args }));
    });
  }
}

async function login(user: string, password: string) {
  const res = await fetch(`${base}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, password }),
  });
  const cookie = res.headers.get('set-cookie');
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, cookie, headers: res.headers };
}

async function addUser(name: string, role: string, password: string) {
  const r = await corral(data, ['user', 'add', name, '--role', role, '--password-stdin'], password + '\n');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

beforeAll(async () => {
  serve = await ServeProcess.start(data);
  base = `http://127.0.0.1:${serve.port}`;
});
afterAll(async () => {
  await serve?.stop();
});

describe('accounts on corral serve', () => {
  it('with no users, the printed token is the owner, and serve says how to add the first admin', async () => {
    expect(serve.out).toMatch(/No users yet[\s\S]*corral user add NAME --role admin/);
    const c = await Client.open({}, `?token=${serve.token}`);
    expect((await c.call('auth.whoami', {})).result).toEqual({ kind: 'owner', user: null, role: 'admin' });
    c.ws.close();
    expect(await (await fetch(`${base}/api/me`)).json()).toEqual({ users: false, identity: null });
  });

  it('creates users over the control socket, with clear errors', async () => {
    await addUser('root-admin', 'admin', 'admin-pass-1');
    await addUser('olga', 'operator', 'operator-pass');
    await addUser('vic', 'viewer', 'viewer-pass-1');
    const dup = await corral(data, ['user', 'add', 'olga', '--role', 'viewer', '--password-stdin'], 'whatever-1\n');
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/already exists/);
    const short = await corral(data, ['user', 'add', 'sam', '--role', 'viewer', '--password-stdin'], 'short\n');
    expect(short.stderr).toMatch(/password.*at least 8/);
    const list = JSON.parse((await corral(data, ['user', 'list', '--json'])).stdout) as Array<{ name: string; role: string }>;
    expect(list.map((u) => [u.name, u.role])).toEqual([
      ['olga', 'operator'],
      ['root-admin', 'admin'],
      ['vic', 'viewer'],
    ]);
  });

  it('logs in with an HTTP-only SameSite=Strict cookie; the role rules the API', async () => {
    const v = await login('vic', 'viewer-pass-1');
    expect(v.status).toBe(200);
    expect(v.cookie).toMatch(/^corral_session=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    const viewer = await Client.open({ cookie: v.cookie!.split(';')[0]! });
    expect((await viewer.call('auth.whoami', {})).result).toEqual({ kind: 'user', user: 'vic', role: 'viewer' });
    expect((await viewer.call('vm.list', {})).result).toEqual([]);
    const create = await viewer.call('vm.create', { name: 'nope' });
    expect(create.error).toMatchObject({ code: 'forbidden', message: expect.stringMatching(/needs the operator role/) });

    const o = await login('olga', 'operator-pass');
    const op = await Client.open({ cookie: o.cookie!.split(';')[0]! });
    expect((await op.call('vm.create', { name: 'made-by-olga' })).result).toMatchObject({ name: 'made-by-olga' });
    for (const args of [{ hostShell: true }, { monitor: true }])
      expect((await op.call('host.settings', args)).error).toMatchObject({ code: 'forbidden' });
    expect((await op.call('terminal.open', { kind: 'host', cols: 80, rows: 24 })).error).toMatchObject({ code: 'forbidden' });
    expect((await op.call('user.list', {})).error).toMatchObject({ code: 'forbidden' });
    op.ws.close();
    viewer.ws.close();
  });

  it('refuses a wrong password, then rate limits with the time to wait', async () => {
    const first = await login('olga', 'wrong-password');
    expect(first).toMatchObject({ status: 401, body: { error: 'wrong user name or password' } });
    let last = first;
    for (let i = 0; i < 3; i++) last = await login('olga', 'wrong-password');
    expect(last.status).toBe(401);
    last = await login('olga', 'wrong-password'); // the fifth
    expect(last.status).toBe(429);
    expect(last.body.error).toMatch(/^wrong user name or password; too many failed logins: try again in \d+ s$/);
    expect(Number(last.headers.get('retry-after'))).toBeGreaterThan(0);
    // even the right password waits now
    const right = await login('olga', 'operator-pass');
    expect(right.status).toBe(429);
    expect(right.body.error).toMatch(/too many failed logins: try again in \d+ s/);
  });

  it('ends the session on logout: its socket closes and the cookie no longer works', async () => {
    const a = await login('root-admin', 'admin-pass-1');
    const cookie = a.cookie!.split(';')[0]!;
    const c = await Client.open({ cookie });
    expect((await fetch(`${base}/api/me`, { headers: { cookie } }).then((r) => r.json())).identity).toMatchObject({ user: 'root-admin' });
    const out = await fetch(`${base}/api/logout`, { method: 'POST', headers: { cookie } });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/corral_session=; .*Max-Age=0/);
    await waitFor('the socket to close', () => c.closed === 4401);
    expect((await fetch(`${base}/api/me`, { headers: { cookie } }).then((r) => r.json())).identity).toBeNull();
    await expect(Client.open({ cookie })).rejects.toThrow(/401/);
  });

  it('creates, uses and revokes API tokens', async () => {
    const r = await corral(data, ['token', 'create', 'olga', '--role', 'viewer', '--expires', '1h', '--json']);
    expect(r.code).toBe(0);
    const t = JSON.parse(r.stdout) as { id: string; token: string; role: string; expiresAt: number };
    expect(t.role).toBe('viewer');
    const c = await Client.open({ authorization: `Bearer ${t.token}` });
    expect((await c.call('auth.whoami', {})).result).toEqual({ kind: 'token', user: 'olga', role: 'viewer' });
    c.ws.close();
    const listed = await corral(data, ['token', 'list']);
    expect(listed.stdout).toContain(t.id);
    expect(listed.stdout).not.toContain(t.token);
    const tooMuch = await corral(data, ['token', 'create', 'olga', '--role', 'admin']);
    expect(tooMuch.stderr).toMatch(/role.*at most operator/);
    expect((await corral(data, ['token', 'revoke', t.id])).code).toBe(0);
    await expect(Client.open({ authorization: `Bearer ${t.token}` })).rejects.toThrow(/401/);
  });

  it('audits every mutating call with who, where and the outcome', async () => {
    const r = await corral(data, ['audit', '--json', '--limit', '200']);
    const log = JSON.parse(r.stdout) as AuditEntry[];
    const find = (who: string, method: string, ok: boolean) => log.find((e) => e.who === who && e.method === method && e.ok === ok);
    expect(find('olga', 'vm.create', true)).toMatchObject({ target: 'made-by-olga', address: '127.0.0.1', error: null });
    expect(find('vic', 'vm.create', false)).toMatchObject({
      target: 'nope',
      address: '127.0.0.1',
      error: expect.stringMatching(/operator/),
    });
    expect(find('olga', 'host.settings', false)).toBeTruthy();
    // the CLI's own calls: the owner, from no network address
    expect(log.some((e) => e.who === 'owner' && e.method === 'user.add' && e.target === 'olga' && e.address === null)).toBe(true);
    expect(find('owner', 'token.revoke', true)).toBeTruthy();
    // reads are not audited
    expect(log.some((e) => e.method === 'vm.list' || e.method === 'auth.whoami')).toBe(false);
    const text = await corral(data, ['audit', '--limit', '5']);
    expect(text.stdout).toMatch(/WHEN\s+WHO\s+FROM\s+METHOD/);
  });

  it('keeps the printed token working from this machine once users exist', async () => {
    const c = await Client.open({}, `?token=${serve.token}`);
    expect((await c.call('auth.whoami', {})).result).toMatchObject({ kind: 'owner' });
    c.ws.close();
  });

  it('logs out a removed user everywhere', async () => {
    const v = await login('vic', 'viewer-pass-1');
    const c = await Client.open({ cookie: v.cookie!.split(';')[0]! });
    expect((await corral(data, ['user', 'remove', 'vic'])).code).toBe(0);
    await waitFor('the socket to close', () => c.closed === 4401);
    expect((await login('vic', 'viewer-pass-1')).status).toBe(401);
  });
});
