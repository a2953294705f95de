import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { methods, type Identity, type MethodName } from '../../electron/core/api/contract';
import { Dispatcher, OWNER, Session, type AuditRecord, type Handlers } from '../../electron/core/api/dispatcher';
import { ACCESS, ROLES, atLeast, may } from '../../electron/core/api/roles';
import { Accounts } from '../../electron/core/auth/accounts';
import { hashPassword, verifyPassword } from '../../electron/core/auth/passwords';
import { openDb } from '../../electron/core/store/db';
import { AccountRepo } from '../../electron/core/store/account-repo';
import { RateLimiter } from '../../electron/server/rate-limit';

// Handlers that record which ran: a refused call must never reach one.
const ran: string[] = [];
const recording = new Proxy({}, { get: (_t, m: string) => () => (ran.push(m), { ok: true }) }) as unknown as Handlers;
const as = (role: Identity['role']): Identity => ({ kind: 'user', user: `u-${role}`, role });
const session = (identity: Identity, sink: (e: string) => void = () => undefined) =>
  new Session('test', sink, undefined, { identity, address: '192.0.2.7' });

describe('the role table', () => {
  it('names a role for every method of the contract', () => {
    expect(Object.keys(ACCESS).sort()).toEqual(Object.keys(methods).sort());
  });

  it('leaves pools to admins and exposed forwards too; operators pick files from them', () => {
    expect(may('viewer', 'pool.files')).toBe(true);
    expect(may('operator', 'pool.add')).toBe(false);
    expect(may('admin', 'pool.remove')).toBe(true);
    const lan = { forwards: [{ proto: 'tcp' as const, hostAddr: '0.0.0.0', hostPort: 8080, guestPort: 80, exposed: true }] };
    const local = { forwards: [{ proto: 'tcp' as const, hostAddr: '127.0.0.1', hostPort: 8080, guestPort: 80, exposed: false }] };
    expect(may('operator', 'vm.update', lan)).toBe(false);
    expect(may('admin', 'vm.update', lan)).toBe(true);
    expect(may('operator', 'vm.create', local)).toBe(true);
  });

  it('orders the roles viewer < operator < admin', () => {
    expect(atLeast('admin', 'operator')).toBe(true);
    expect(atLeast('operator', 'admin')).toBe(false);
    expect(atLeast('viewer', 'viewer')).toBe(true);
  });

  it.each(ROLES)('is enforced by the dispatcher for every method, as %s', async (role) => {
    const audit: AuditRecord[] = [];
    const d = new Dispatcher(recording, (r) => audit.push(r));
    for (const m of Object.keys(methods) as MethodName[]) {
      ran.length = 0;
      const r = await d.handle(session(as(role)), { id: 1, method: m, args: {} });
      if (atLeast(role, ACCESS[m].role)) {
        // allowed: it gets as far as its own argument checks (or runs)
        expect(r, m).not.toHaveProperty('error.code', 'forbidden');
      } else {
        expect(r, m).toHaveProperty('error.code', 'forbidden');
        expect((r as { error: { message: string } }).error.message).toMatch(new RegExp(`needs the ${ACCESS[m].role} role`));
        expect(ran, m).toEqual([]);
      }
    }
    // every audited method left one record, refused or not
    const audited = Object.keys(methods).filter((m) => ACCESS[m as MethodName].audit);
    expect(audit.map((a) => a.method).sort()).toEqual(audited.sort());
    expect(audit.every((a) => a.identity.user === `u-${role}` && a.address === '192.0.2.7')).toBe(true);
  });

  it('classes: viewers read, operators change VMs, admins change the host', () => {
    for (const m of ['vm.list', 'vm.get', 'events.list', 'vm.stats', 'vm.screenshot', 'serial.attach', 'serial.log'] as const)
      expect(may('viewer', m), m).toBe(true);
    for (const m of ['vm.create', 'vm.start', 'vm.delete', 'serial.write', 'console.ticket', 'monitor.exec'] as const) {
      expect(may('viewer', m), m).toBe(false);
      expect(may('operator', m), m).toBe(true);
    }
    for (const m of ['host.settings', 'user.add', 'token.create', 'audit.list'] as const) {
      expect(may('operator', m), m).toBe(false);
      expect(may('admin', m), m).toBe(true);
    }
  });

  it('lets an operator ssh into a guest but not open a host shell', async () => {
    const d = new Dispatcher(recording);
    ran.length = 0;
    const host = await d.handle(session(as('operator')), { id: 1, method: 'terminal.open', args: { kind: 'host', cols: 80, rows: 24 } });
    expect(host).toHaveProperty('error.code', 'forbidden');
    expect(ran).toEqual([]);
    const ssh = await d.handle(session(as('operator')), {
      id: 2,
      method: 'terminal.open',
      args: { kind: 'ssh', vm: 'a', cols: 80, rows: 24 },
    });
    expect(ssh).toEqual({ id: 2, result: { ok: true } });
    const owner = await d.handle(new Session('x', () => undefined), {
      id: 3,
      method: 'terminal.open',
      args: { kind: 'host', cols: 80, rows: 24 },
    });
    expect(owner).toEqual({ id: 3, result: { ok: true } });
  });

  it('keeps an operator from turning the host shell or the monitor on', async () => {
    const d = new Dispatcher(recording);
    for (const args of [{ hostShell: true }, { monitor: true }]) {
      const r = await d.handle(session(as('operator')), { id: 1, method: 'host.settings', args });
      expect(r).toHaveProperty('error.code', 'forbidden');
    }
  });

  it('drops events a session could not have asked for', () => {
    const got: string[] = [];
    const viewer = session(as('viewer'), (e) => got.push(e));
    viewer.send('terminal.data', { id: 't', data: '' });
    viewer.send('vm.removed', { id: 'x', name: 'x' });
    expect(got).toEqual(['vm.removed']);
    const ops: string[] = [];
    session(as('operator'), (e) => ops.push(e)).send('terminal.data', { id: 't', data: '' });
    expect(ops).toEqual(['terminal.data']);
  });

  it('takes the owner for a session that names no identity (desktop app, control socket)', () => {
    expect(new Session('x', () => undefined).identity).toEqual(OWNER);
  });
});

describe('passwords', () => {
  it('hash with scrypt, a salt and the parameters, and verify', async () => {
    const a = await hashPassword('correct horse');
    const b = await hashPassword('correct horse');
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword('correct horse', a)).toBe(true);
    expect(await verifyPassword('correct horsf', a)).toBe(false);
    expect(await verifyPassword('x', 'garbage')).toBe(false);
  });
});

describe('accounts', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  function accounts(now = () => Date.now()) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-acc-'));
    dirs.push(dir);
    return new Accounts(new AccountRepo(openDb(path.join(dir, 'db.sqlite'))), now);
  }

  it('logs users in by name and password', async () => {
    const a = accounts();
    expect(a.hasUsers()).toBe(false);
    await a.addUser('alice', 'operator', 'secret-pass');
    expect(a.hasUsers()).toBe(true);
    expect(await a.login('ALICE', 'secret-pass')).toEqual({ kind: 'user', user: 'alice', role: 'operator' });
    expect(await a.login('alice', 'wrong-pass')).toBeNull();
    expect(await a.login('bob', 'secret-pass')).toBeNull();
    await expect(a.addUser('Alice', 'viewer', 'another-one')).rejects.toMatchObject({ code: 'conflict', field: 'name' });
  });

  it('creates tokens shown once, stored hashed, capped by the user, revocable and expiring', async () => {
    let now = 1_000_000;
    const a = accounts(() => now);
    await a.addUser('ops', 'operator', 'secret-pass');
    expect(() => a.createToken('ops', 'admin')).toThrow(/at most operator/);
    const t = a.createToken('ops', 'viewer', 3600);
    expect(t.token).toMatch(/^corral_[0-9a-f]{12}_/);
    // the secret is base64url, so it may hold '_' itself: it is all after the id
    expect(JSON.stringify(a.tokens())).not.toContain(t.token.slice('corral_'.length + 13));
    expect(a.verifyToken(t.token)).toEqual({ kind: 'token', user: 'ops', role: 'viewer' });
    expect(a.verifyToken(t.token.slice(0, -1) + (t.token.endsWith('A') ? 'B' : 'A'))).toBeNull();
    expect(a.tokens()[0]!.lastUsed).toBe(now);
    now += 3600_000;
    expect(a.verifyToken(t.token)).toBeNull();
    const u = a.createToken('ops', 'operator');
    a.revokeToken(u.id);
    expect(a.verifyToken(u.token)).toBeNull();
    expect(() => a.revokeToken(u.id)).toThrow(/no token/);
  });

  it("ends a removed user's tokens and tells listeners", async () => {
    const a = accounts();
    await a.addUser('bob', 'admin', 'secret-pass');
    const t = a.createToken('bob', 'admin');
    const changed: string[] = [];
    a.onUserChanged((n) => changed.push(n));
    a.removeUser('bob');
    expect(changed).toEqual(['bob']);
    expect(a.verifyToken(t.token)).toBeNull();
    expect(a.tokens()).toEqual([]);
  });
});

describe('the login rate limit', () => {
  it('allows a few failures, then locks out for longer each time, and forgets after a success', () => {
    let now = 0;
    const rl = new RateLimiter({ free: 3, firstLockMs: 30_000, maxLockMs: 60_000, forgetMs: 3600_000 }, () => now);
    const keys = ['a'];
    for (let i = 0; i < 3; i++) {
      expect(rl.wait(keys)).toBe(0);
      rl.failed(keys);
    }
    expect(rl.wait(keys)).toBe(30_000);
    expect(rl.wait(['b'])).toBe(0);
    now += 30_000;
    rl.failed(keys);
    expect(rl.wait(keys)).toBe(60_000);
    now += 60_000;
    rl.failed(keys);
    expect(rl.wait(keys)).toBe(60_000); // capped
    rl.succeeded(keys);
    expect(rl.wait(keys)).toBe(0);
  });
});
