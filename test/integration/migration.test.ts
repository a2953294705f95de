// Live migration between two real `corral serve` processes on loopback, each with its own data
// dir, both given the same CA (made here with openssl). Real QEMU under TCG, the test guest:
// it keeps counting on its serial console across the move, its disk keeps what was written,
// and a failure or a cancel leaves exactly one QEMU, on the source.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmInfo } from '../../electron/core/api/contract';
import { dataLayout, vmFiles } from '../../electron/core/paths';
import { BOOT_MS, CLI, FIXTURE, qemuPidsFor, tempDir, waitFor } from '../helpers';
import { corral, ServeProcess } from './serve-process';
import { WsApi } from './ws-client';

const root = tempDir('corral-mig-');
const dataA = path.join(root, 'a');
const dataB = path.join(root, 'b');
const shared = path.join(root, 'shared');
let a: ServeProcess;
let b: ServeProcess;
let apiA: WsApi;
let apiB: WsApi;
/** B's URL as the source dials it (its printed URL carries the owner token in the fragment). */
let urlB = '';

const boot = ['--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--append', 'console=ttyS0 quiet'];
/** Counts on the serial console once a second, with the guest's uptime: a reboot would start both again. */
const COUNTER = 'i=0; while :; do i=$((i+1)); echo "TICK $i $(cut -d. -f1 /proc/uptime)"; sleep 1; done &';

function makeCa(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    path.join(dir, 'ca-key.pem'),
    '-out',
    path.join(dir, 'ca-cert.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=corral-test-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

beforeAll(async () => {
  fs.mkdirSync(shared);
  for (const d of [dataA, dataB]) {
    fs.mkdirSync(d, { mode: 0o700 });
    makeCa(path.join(d, 'migration-ca'));
  }
  // both hosts get the same CA
  fs.cpSync(path.join(dataA, 'migration-ca'), path.join(dataB, 'migration-ca'), { recursive: true });
  [a, b] = await Promise.all([ServeProcess.start(dataA), ServeProcess.start(dataB)]);
  urlB = `http://127.0.0.1:${b.port}`;
  for (const d of [dataA, dataB]) expect((await corral(d, ['pool', 'add', 'shared', shared])).code).toBe(0);
  apiA = await WsApi.connect(a.port, a.token);
  apiB = await WsApi.connect(b.port, b.token);
  await apiB.call('host.settings', { monitor: true });
  await apiA.call('events.subscribe', {});
}, 120_000);

afterAll(async () => {
  for (const [api, data] of [
    [apiA, dataA],
    [apiB, dataB],
  ] as const) {
    for (const vm of (await api?.call('vm.list', {}).catch(() => [])) ?? []) await corral(data, ['vm', 'kill', vm.name]);
    api?.close();
  }
  await Promise.all([a?.stop(), b?.stop()]);
  fs.rmSync(root, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

async function type(api: WsApi, vm: string, line: string): Promise<void> {
  await api.call('serial.write', { vm, data: b64(`${line}\n`) });
}

async function serial(api: WsApi, vm: string): Promise<string> {
  const { data } = await api.call('serial.log', { vm, tailBytes: 256 * 1024 });
  return Buffer.from(data, 'base64').toString();
}

function ticks(text: string): Array<{ n: number; up: number }> {
  return [...text.matchAll(/TICK (\d+) (\d+)/g)].map((m) => ({ n: Number(m[1]), up: Number(m[2]) }));
}

/** Creates and boots a guest on A that counts on its console; returns it once it counts. */
async function countingGuest(name: string, disk: string[], memory = '128M'): Promise<VmInfo> {
  const made = await corral(dataA, ['vm', 'create', name, ...boot, '--memory', memory, ...disk]);
  expect(made.stderr).toBe('');
  expect((await corral(dataA, ['vm', 'start', name])).code).toBe(0);
  await waitFor(`${name}'s prompt`, async () => (await serial(apiA, name)).includes(FIXTURE.prompt), BOOT_MS, 250);
  await type(apiA, name, COUNTER);
  await waitFor(`${name} counting`, async () => ticks(await serial(apiA, name)).length >= 2, 60_000, 250);
  return apiA.call('vm.get', { vm: name });
}

const pidFile = (data: string, id: string) => vmFiles(dataLayout(data), id).pidFile;

/** The QEMUs of this VM on both hosts. */
function qemus(id: string): { a: number[]; b: number[] } {
  return { a: qemuPidsFor(pidFile(dataA, id)), b: qemuPidsFor(pidFile(dataB, id)) };
}

/** After a move: the guest counts on B where it left off on A (no reboot), and A has nothing left. */
async function expectMovedAndCounting(name: string, id: string, before: Array<{ n: number; up: number }>): Promise<void> {
  expect((await apiA.call('vm.list', {})).map((v) => v.name)).not.toContain(name);
  const vm = await apiB.call('vm.get', { vm: name });
  expect(vm.state).toBe('running');
  expect(vm.id).toBe(id);
  const last = before.at(-1)!;
  const after = await waitFor(
    `${name} counting on B`,
    async () => {
      const t = ticks(await serial(apiB, name));
      return t.length >= 2 ? t : null;
    },
    60_000,
    250,
  );
  // B's console log starts at the move: the count goes on from A's, the uptime too, no boot banner
  expect(after[0]!.n).toBeGreaterThanOrEqual(last.n);
  expect(after[0]!.n).toBeLessThan(last.n + 30);
  expect(after[0]!.up).toBeGreaterThanOrEqual(last.up);
  expect(await serial(apiB, name)).not.toContain(FIXTURE.banner);
  expect(qemus(id)).toEqual({ a: [], b: [vm.pid] });
}

/** A command on the guest's console and the line it printed after `tag`. */
async function guestSays(api: WsApi, vm: string, cmd: string, tag: string): Promise<string> {
  await type(api, vm, `echo "${tag}$(${cmd})"`);
  const re = new RegExp(`\\n${tag}([^\\r\\n]*)`);
  return waitFor(`the guest's answer to ${cmd}`, async () => re.exec(await serial(api, vm))?.[1] ?? null, 60_000, 250);
}

describe('live migration between two hosts', () => {
  it(
    'moves a running guest on shared storage: it keeps counting, its disk is intact, the stream used TLS',
    async () => {
      const image = path.join(shared, 'shared.qcow2');
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M']);
      const vm = await countingGuest('mover', ['--disk-image', image]);
      const startedOnA = (await apiA.call('vm.get', { vm: 'mover' })).startedAt;
      await type(apiA, 'mover', 'echo MARK-SHARED-1 | dd of=/dev/vda conv=fsync 2>/dev/null');
      await new Promise((r) => setTimeout(r, 1500));
      const before = ticks(await serial(apiA, 'mover'));
      const res = await corral(dataA, ['vm', 'migrate', 'mover', urlB, '--token', b.token]);
      expect(res.stderr).not.toMatch(/^corral:/m);
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/mover: moved to .* \(live, shared storage\) in [\d.]+ s, paused \d+ ms/);
      await expectMovedAndCounting('mover', vm.id, before);
      expect(await guestSays(apiB, 'mover', 'dd if=/dev/vda bs=14 count=1 2>/dev/null', 'DISK=')).toBe('MARK-SHARED-1');
      // the target's QEMU took the stream with the TLS credentials
      const params = await apiB.call('monitor.exec', { vm: 'mover', command: 'info migrate_parameters' });
      expect(params.output).toMatch(/tls-creds: '?mig-tls/);
      // the shared disk stays where it is, used by B now; A's journal says where it went
      expect(fs.existsSync(image)).toBe(true);
      expect((await apiB.call('vm.get', { vm: 'mover' })).config.disks[0]!.path).toBe(image);
      const logA = await apiA.call('events.list', { limit: 50 });
      expect(logA.some((e) => /Moved to http:\/\/127\.0\.0\.1:\d+ in/.test(e.message))).toBe(true);
      expect(apiA.events.some((e) => e.event === 'migration.progress')).toBe(true);
      // the same machine on B: made when it was made, up since it started on A
      const there = await apiB.call('vm.get', { vm: 'mover' });
      expect(there.createdAt).toBe(vm.createdAt);
      expect(there.startedAt).toBe(startedOnA);
    },
    BOOT_MS + 240_000,
  );

  it(
    'moves a running guest with local storage: the disk is copied over NBD and removed here',
    async () => {
      const vm = await countingGuest('local-mover', ['--disk', '64M']);
      const diskA = vm.config.disks[0]!.path;
      await type(apiA, 'local-mover', 'echo MARK-LOCAL-22 | dd of=/dev/vda conv=fsync 2>/dev/null');
      await new Promise((r) => setTimeout(r, 1500));
      const before = ticks(await serial(apiA, 'local-mover'));
      const res = await corral(dataA, ['vm', 'migrate', 'local-mover', urlB, '--token', b.token]);
      expect(res.stderr).not.toMatch(/^corral:/m);
      expect(res.stdout).toMatch(/\(live, local storage\)/);
      await expectMovedAndCounting('local-mover', vm.id, before);
      expect(await guestSays(apiB, 'local-mover', 'dd if=/dev/vda bs=14 count=1 2>/dev/null', 'DISK=')).toBe('MARK-LOCAL-22');
      const diskB = (await apiB.call('vm.get', { vm: 'local-mover' })).config.disks[0]!.path;
      expect(diskB.startsWith(path.join(dataB, 'images'))).toBe(true);
      expect(fs.existsSync(diskA)).toBe(false);
    },
    BOOT_MS + 240_000,
  );

  it(
    'a target killed mid-migration leaves the guest running on A, one QEMU, nothing on B',
    async () => {
      const vm = await countingGuest('survivor', ['--disk', '64M'], '256M');
      // memory that keeps changing: the copy takes a while
      await type(apiA, 'survivor', 'while :; do dd if=/dev/urandom of=/churn bs=1M count=48 2>/dev/null; done &');
      apiA.events = [];
      const migrating = apiA.call('vm.migrate', { vm: 'survivor', to: urlB, token: b.token, maxDowntimeMs: 1 });
      const outcome = migrating.then(
        () => null,
        (e: Error) => e,
      );
      const target = await waitFor('the arrival on B', async () => {
        const there = (await apiB.call('vm.list', {})).find((v) => v.name === 'survivor');
        return there?.state === 'incoming' && there.pid ? there : null;
      });
      const sending = waitFor(
        'RAM being sent',
        () => apiA.events.some((e) => e.event === 'migration.progress' && (e.payload as { phase: string }).phase === 'memory'),
        120_000,
      );
      await Promise.race([
        sending,
        outcome.then((e) => {
          throw new Error(`the migration ended before the target was killed: ${e?.message ?? 'it succeeded'}`);
        }),
      ]);
      process.kill(target.pid!, 'SIGKILL');
      const err = await outcome;
      expect(err?.message).toMatch(/the migration of "survivor" to http:\/\/127\.0\.0\.1:\d+ failed: .*; it runs here still/);
      await expectStillOnA('survivor', vm.id);
      expect(fs.readdirSync(path.join(dataB, 'images')).filter((f) => f.startsWith(vm.id))).toEqual([]);
    },
    BOOT_MS + 240_000,
  );

  it(
    'Ctrl-C on corral vm migrate cancels: the guest keeps running on A',
    async () => {
      const image = path.join(shared, 'cancel.qcow2');
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '16M']);
      const vm = await countingGuest('stayer', ['--disk-image', image], '256M');
      await type(apiA, 'stayer', 'while :; do dd if=/dev/urandom of=/churn bs=1M count=48 2>/dev/null; done &');
      const child = spawn(
        process.execPath,
        [CLI, '--data', dataA, 'vm', 'migrate', 'stayer', urlB, '--token', b.token, '--max-downtime', '1'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const code = new Promise<number | null>((resolve) => child.once('exit', resolve));
      await waitFor('progress of the RAM copy', () => /memory: RAM/.test(err), 120_000, 100);
      child.kill('SIGINT');
      expect(await code).toBe(130);
      expect(err).toMatch(/cancelled: stayer stays on this host/);
      await expectStillOnA('stayer', vm.id);
      expect(fs.existsSync(image)).toBe(true);
    },
    BOOT_MS + 240_000,
  );

  it('moves a stopped VM offline, with its disk copied, and refuses a VM with a TPM', async () => {
    const made = await corral(dataA, ['vm', 'create', 'parked', ...boot, '--disk', '16M']);
    expect(made.code).toBe(0);
    const vm = await apiA.call('vm.get', { vm: 'parked' });
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 64k', vm.config.disks[0]!.path]);
    // two standalone hosts name themselves by the machine's host name (the same here)
    const hostA = os.hostname();
    const res = await corral(dataA, ['vm', 'migrate', 'parked', urlB, '--token', b.token]);
    expect(res.stderr).toBe('');
    expect(res.stdout).toMatch(/parked: moved to .* \(offline, local storage\)/);
    const there = await apiB.call('vm.get', { vm: 'parked' });
    expect(there.state).toBe('stopped');
    expect(there.config.kernel).toBe(FIXTURE.kernel);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0x5a 0 64k', there.config.disks[0]!.path]);
    expect((await apiA.call('vm.list', {})).map((v) => v.name)).not.toContain('parked');
    expect(qemus(vm.id)).toEqual({ a: [], b: [] });
    // its history came along: when it was made, and A's journal of it before B's own, naming A
    expect(there.createdAt).toBe(vm.createdAt);
    const log = (await apiB.call('events.list', { vm: 'parked' })).reverse();
    expect(log[0]).toMatchObject({ kind: 'created', host: hostA });
    const moving = log.findIndex((e) => e.message.startsWith('Moving to'));
    const arriving = log.findIndex((e) => e.message.startsWith('Arriving from another host'));
    expect(log[moving]!.host).toBe(hostA);
    expect(arriving).toBeGreaterThan(moving);
    expect(log[arriving]!.host).toBeUndefined();
    // B's own log holds only what happened on B
    expect((await apiB.call('events.list', {})).filter((e) => e.vmId === vm.id).every((e) => !e.host)).toBe(true);

    expect((await corral(dataA, ['vm', 'create', 'sealed', ...boot, '--tpm', 'on'])).code).toBe(0);
    const tpm = await corral(dataA, ['vm', 'migrate', 'sealed', urlB, '--token', b.token]);
    expect(tpm.code).toBe(1);
    expect(tpm.stderr).toMatch(/"sealed" has a TPM: Corral does not migrate TPM state/);
    expect((await apiB.call('vm.list', {})).map((v) => v.name)).not.toContain('sealed');
  }, 120_000);
});

async function expectStillOnA(name: string, id: string): Promise<void> {
  const info = await waitFor(`${name} running on A`, async () => {
    const v = await apiA.call('vm.get', { vm: name });
    return v.state === 'running' ? v : null;
  });
  await waitFor(`nothing of ${name} on B`, async () => !(await apiB.call('vm.list', {})).some((v) => v.name === name), 30_000, 200);
  expect(qemus(id)).toEqual({ a: [info.pid], b: [] });
  // still counting on A
  const n = ticks(await serial(apiA, name)).at(-1)!.n;
  await waitFor(`${name} counting on A`, async () => ticks(await serial(apiA, name)).at(-1)!.n > n + 1, 60_000, 250);
}
