import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Liveness, PortForward } from '../../electron/core/api/contract';
import { LEGACY_MAC } from '../../electron/core/api/nics';
import { Dispatcher, Session, toApiError, type Handlers } from '../../electron/core/api/dispatcher';
import { parseSize } from '../../electron/core/api/units';
import { openDb } from '../../electron/core/store/db';
import { PoolRepo } from '../../electron/core/store/pool-repo';
import { checkBootFiles, checkNetwork } from '../../electron/core/vms/config-checks';
import { Pools } from '../../electron/core/vms/pools';
import { tempDir } from '../helpers';

// Handlers that echo their (validated, defaulted) arguments.
const echo = new Proxy({}, { get: () => (args: unknown) => args }) as unknown as Handlers;
const d = new Dispatcher(echo);
const s = new Session('test', () => undefined);
const call = (method: string, args: unknown) => d.handle(s, { id: 1, method, args });

describe('the API contract at the edge', () => {
  it('applies defaults to a valid create', async () => {
    const r = await call('vm.create', { name: 'web' });
    expect(r).toMatchObject({ result: { name: 'web', cpus: 1, memoryMiB: 512, disk: null, restart: 'never', forwards: [] } });
  });

  it.each([
    [{ name: '' }, 'name', /empty/],
    [{ name: '   ' }, 'name', /spaces/],
    [{ name: 'a/b' }, 'name', /"\/"/],
    [{ name: 'a\nb' }, 'name', /control/],
    [{ name: 'x'.repeat(101) }, 'name', /100/],
    [{ name: 'ok', cpus: 0 }, 'cpus', /at least 1/],
    [{ name: 'ok', cpus: 1e6 }, 'cpus', /at most/],
    [{ name: 'ok', cpus: 1.5 }, 'cpus', /whole/],
    [{ name: 'ok', memoryMiB: -1 }, 'memoryMiB', /at least/],
    [{ name: 'ok', memoryMiB: Number.NaN }, 'memoryMiB', /./],
    [{ name: 'ok', memoryMiB: 1e30 }, 'memoryMiB', /./],
    [{ name: 'ok', kernel: 'relative/vmlinuz' }, 'kernel', /absolute/],
    [{ name: 'ok', forwards: [{ hostPort: 70000, guestPort: 22 }] }, 'forwards.0.hostPort', /./],
    [{ name: 'ok', restart: 'sometimes' }, 'restart', /./],
    [{ name: 'ok', disk: { size: 10 } }, 'disk.size', /1 MiB/],
    [{ name: 'ok', bogus: 1 }, 'bogus', /unknown argument/],
  ])('refuses %j naming the field', async (args, field, msg) => {
    const r = await call('vm.create', args);
    expect(r).toHaveProperty('error.code', 'invalid-argument');
    const err = (r as { error: { field?: string; message: string } }).error;
    expect(err.field).toBe(field);
    expect(err.message).toMatch(msg);
    expect(err.message).toContain(field);
  });

  it('accepts names with spaces, commas, quotes and non-ASCII letters', async () => {
    for (const name of ['my vm', 'a,b', `it's "quoted"`, 'Ünïcødé 虚拟机']) {
      expect(await call('vm.create', { name })).toHaveProperty('result.name', name);
    }
  });

  it('refuses unknown methods and missing arguments', async () => {
    expect(await call('vm.explode', {})).toHaveProperty('error.code', 'unknown-method');
    expect(await call('vm.start', {})).toMatchObject({ error: { code: 'invalid-argument', field: 'vm' } });
    expect(await call('serial.write', { vm: 'x', data: 'not base64!' })).toMatchObject({ error: { field: 'data' } });
  });

  it.each([
    [null, 0, undefined],
    [undefined, 0, undefined],
    [42, 0, undefined],
    ['vm.list', 0, undefined],
    [[{ id: 1, method: 'vm.list' }], 0, undefined],
    [Symbol('x'), 0, undefined],
    [{ method: 'vm.list' }, 0, 'id'],
    [{ id: '3', method: 'vm.list' }, 0, 'id'],
    [{ id: 1.5, method: 'vm.list' }, 0, 'id'],
    [{ id: Infinity, method: 'vm.list' }, 0, 'id'],
    [{ id: 2 ** 53, method: 'vm.list' }, 0, 'id'],
    [{ id: 4 }, 4, 'method'],
    [{ id: 4, method: { toString: (): string => 'vm.list' } }, 4, 'method'],
    [{ id: 5, method: 'vm.list', args: null }, 5, 'args'],
    [{ id: 5, method: 'vm.list', args: [] }, 5, 'args'],
    [{ id: 5, method: 'vm.list', args: 'x' }, 5, 'args'],
  ])('answers the message %s with bad-request (id %s, field %s)', async (msg, id, field) => {
    const r = await d.handle(s, msg);
    expect(r).toMatchObject({ id, error: { code: 'bad-request' } });
    expect((r as { error: { field?: string } }).error.field).toBe(field);
  });

  it('treats names every object has as unknown methods', async () => {
    for (const method of ['__proto__', 'constructor', 'toString', 'hasOwnProperty'])
      expect(await call(method, {})).toMatchObject({ error: { code: 'unknown-method' } });
  });

  it('turns whatever a handler throws into an error reply', async () => {
    const throwing = new Proxy(
      {},
      {
        get: () => () => {
          throw Object.create(null); // cannot even be turned into a string
        },
      },
    ) as unknown as Handlers;
    const r = await new Dispatcher(throwing).handle(s, { id: 3, method: 'vm.list' });
    expect(r).toMatchObject({ id: 3, error: { code: 'failed' } });
  });
});

describe('field errors of the config checks', () => {
  // the page shows `reason` on the field: every such error must carry it
  const caught = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      return toApiError(err);
    }
    throw new Error('no error');
  };

  it('carry the reason without the preamble', () => {
    const dir = tempDir();
    const pools = new Pools(new PoolRepo(openDb(':memory:')), {
      root: dir,
      images: path.join(dir, 'images'),
      vmsDir: path.join(dir, 'vms'),
    });
    const noOwner = () => null;
    const files = { iso: '/no/such.iso', kernel: null, initrd: null, append: null };
    expect(caught(() => checkBootFiles(files, pools, noOwner))).toMatchObject({ field: 'iso', reason: '/no/such.iso: no such file' });
    expect(caught(() => checkBootFiles({ ...files, iso: null, append: 'x' }, pools, noOwner))).toMatchObject({
      field: 'append',
      reason: 'needs a kernel',
    });
    const oneNic = (forwards: PortForward[], liveness: Liveness | null) => ({
      nics: [{ id: 'net0', kind: 'user' as const, mac: LEGACY_MAC, bridge: null, network: null, forwards }],
      liveness,
    });
    const fwd = { proto: 'tcp' as const, hostAddr: '127.0.0.1', hostPort: 2222, guestPort: 22, exposed: false };
    expect(caught(() => checkNetwork(oneNic([fwd, fwd], null)))).toMatchObject({
      field: 'forwards.1.hostPort',
      reason: '2222 is forwarded twice',
    });
    expect(caught(() => checkNetwork(oneNic([{ ...fwd, hostAddr: '0.0.0.0' }], null)))).toMatchObject({
      field: 'forwards.0.exposed',
      reason: 'it listens on every network of the host: set "exposed" to open it on purpose',
    });
    expect(caught(() => checkNetwork(oneNic([{ ...fwd, hostPort: 80 }], null)))).toMatchObject({
      field: 'forwards.0.exposed',
    });
    expect(caught(() => checkNetwork(oneNic([{ ...fwd, hostAddr: '8.8.8.8', exposed: true }], null)))).toMatchObject({
      field: 'forwards.0.hostAddr',
      reason: '8.8.8.8 is not an address of this host',
    });
    checkNetwork(
      oneNic(
        [
          { ...fwd, hostAddr: '0.0.0.0', exposed: true },
          { ...fwd, hostAddr: '127.0.0.2' },
        ],
        null,
      ),
    );
    const probe = caught(() => checkNetwork(oneNic([], { kind: 'tcp', port: 22 })));
    expect(probe.field).toBe('liveness.port');
    expect(probe.reason).toMatch(/^the probe needs a tcp port forward/);
  });
});

describe('sizes', () => {
  it('parses units', () => {
    expect(parseSize('512M')).toBe(512 * 1024 ** 2);
    expect(parseSize('2G')).toBe(2 * 1024 ** 3);
    expect(parseSize('1.5GiB')).toBe(1.5 * 1024 ** 3);
    expect(parseSize('512', 'm')).toBe(512 * 1024 ** 2);
    expect(parseSize('4096')).toBe(4096);
  });
  it.each(['', 'abc', '-1G', '12Q', '1e30G', 'NaN'])('refuses %j', (t) => {
    expect(() => parseSize(t)).toThrow();
  });
});
