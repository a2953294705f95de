// Placement in a cluster of two hosts (network namespaces, real `corral serve`, Debian's etcd):
// `vm create --host` lands on the named host, from any host; without it the VM goes to the host
// with the most room (here: the one not running a 1 GiB guest); a VM no host admits is refused
// with each host's reason; a single host refuses --host.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE, FIXTURE_DIR, tempDir, waitFor } from '../helpers';
import { corral, ServeProcess } from './serve-process';
import { list, NetnsHosts, ok, status } from './netns-hosts';

const net = new NetnsHosts(['a', 'b'], 'plc');
const [A, B] = net.hosts as [(typeof net.hosts)[0], (typeof net.hosts)[0]];
const BOOT = ['--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd];

beforeAll(async () => {
  await net.start();
  for (const h of net.hosts) await ok(h.data, ['pool', 'add', 'fixtures', FIXTURE_DIR]);
  await net.form();
}, 300_000);

afterAll(async () => {
  await net.stop();
}, 120_000);

describe('placement in a cluster', () => {
  it('creates a VM on the host --host names, from another host', async () => {
    const made = await ok(A.data, ['vm', 'create', 'placed-b', ...BOOT, '--memory', '128M', '--host', 'b']);
    expect(made).toMatch(/Created "placed-b" on host b\./);
    // B has it as its own VM; A lists it on B
    const onB = (await list(B)).find((v) => v.name === 'placed-b');
    expect(onB?.host).toMatchObject({ name: 'b', reporting: true });
    const seen = await waitFor("B's VM in A's list", async () => (await list(A)).find((v) => v.name === 'placed-b'));
    expect(seen.host?.name).toBe('b');
    // the name is the cluster's: B cannot make another
    const dup = await corral(B.data, ['vm', 'create', 'placed-b', ...BOOT, '--host', 'a']);
    expect(dup.stderr).toMatch(/a VM named "placed-b" already exists in the cluster/);
    expect((await list(A)).filter((v) => v.name === 'placed-b')).toHaveLength(1);

    const nowhere = await corral(A.data, ['vm', 'create', 'x', ...BOOT, '--host', 'nosuch']);
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toMatch(/no host named "nosuch" in the cluster \(its hosts: a, b\)/);
    expect((await list(A)).some((v) => v.name === 'x')).toBe(false);
  });

  it('places a VM without --host on the host with the most room', async () => {
    await ok(A.data, ['vm', 'create', 'fill-a', ...BOOT, '--memory', '1G', '--host', 'a']);
    await ok(A.data, ['vm', 'start', 'fill-a']);
    // B knows A's room once A published it (at once on a start, at the latest 5 s later)
    await waitFor(
      "A's committed memory seen from B",
      async () => ((await status(B)).hosts.find((h) => h.name === 'a')?.committedBytes ?? 0) >= 1024 ** 3,
      60_000,
      200,
    );
    // asked on A (the fuller host), the VM goes to B
    const made = await ok(A.data, ['vm', 'create', 'auto-1', ...BOOT, '--memory', '128M']);
    expect(made).toMatch(/Created "auto-1" on host b\./);
    expect((await list(B)).find((v) => v.name === 'auto-1')?.host?.name).toBe('b');
    // asked on B, it stays on B (still the emptier host: nothing runs there)
    const here = await ok(B.data, ['vm', 'create', 'auto-2', ...BOOT, '--memory', '128M']);
    expect(here).toMatch(/Created "auto-2" on host b\./);
    await ok(A.data, ['vm', 'stop', 'fill-a', '--timeout', '5']);
  });

  it("refuses a VM no host admits, with each host's reason, and makes nothing", async () => {
    const r = await corral(B.data, ['vm', 'create', 'huge', ...BOOT, '--memory', '3T']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /no host of the cluster can take "huge": a: not enough memory to start "huge": .*; b: not enough memory to start "huge"/,
    );
    for (const h of net.hosts) expect((await list(h)).some((v) => v.name === 'huge')).toBe(false);
    // the name was never claimed: a smaller "huge" is fine
    await ok(B.data, ['vm', 'create', 'huge', ...BOOT, '--memory', '64M']);
  });

  it('a single host refuses --host and creates as before without it', async () => {
    const dir = tempDir('corral-single-');
    const serve = await ServeProcess.start(dir);
    try {
      // (a test host may register the fixtures pool itself)
      await corral(dir, ['pool', 'add', 'fixtures', FIXTURE_DIR]);
      const r = await corral(dir, ['vm', 'create', 'solo', ...BOOT, '--host', 'a']);
      expect(r.stderr).toMatch(/this host is not in a cluster: leave out the host/);
      expect(await ok(dir, ['vm', 'create', 'solo', ...BOOT])).toMatch(/^Created "solo"\. Start it/);
    } finally {
      await serve.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
