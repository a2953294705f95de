// Three hosts on one machine, each in a network namespace of its own (veth pairs on a bridge the
// test makes), each a real `corral serve` with its own data dir and its own etcd member (Debian's
// etcd). They form a cluster with init/join; bad tokens and foreign certificates are refused;
// the inventory on A follows a VM of C live, and A stops it on C.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterStatus, JoinTicket, VmInfo } from '../../electron/core/api/contract';
import { findFencer } from '../../electron/core/ha/fencer/client';
import { fencerFiles } from '../../electron/core/ha/fencer/protocol';
import { CLI, FIXTURE, FIXTURE_DIR, qemuPidsFor, tempDir, waitFor } from '../helpers';
import { corral } from './serve-process';

// a subnet and names of this run's own (interface names are at most 15 characters)
const NET = 20 + (process.pid % 200);
const BRIDGE = `crlbr${NET}`;
const HOSTS = ['a', 'b', 'c'].map((name, i) => ({
  name,
  ns: `crl${NET}${name}`,
  veth: `crl${NET}${name}0`,
  address: `10.77.${NET}.${i + 1}`,
  data: tempDir(`corral-cluster-${name}-`),
  serve: null as ChildProcess | null,
  log: '',
}));
const [A, B, C] = HOSTS as [(typeof HOSTS)[0], (typeof HOSTS)[0], (typeof HOSTS)[0]];
const PEER_PORT = 7421; // each namespace has ports of its own: the defaults do not collide
const JOIN_URL = `https://${A.address}:7422`;

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const tryIp = (...args: string[]) => {
  try {
    ip(...args);
  } catch {
    // already gone
  }
};

async function ok(dir: string, args: string[]): Promise<string> {
  const r = await corral(dir, args);
  if (r.code !== 0) throw new Error(`corral ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const status = async (h: typeof A) => JSON.parse(await ok(h.data, ['cluster', 'status', '--json'])) as ClusterStatus;
const list = async (h: typeof A) => JSON.parse(await ok(h.data, ['vm', 'list', '--json'])) as VmInfo[];
const ticket = async () => JSON.parse(await ok(A.data, ['cluster', 'token', '--json'])) as JoinTicket;
const join = (h: typeof A, token: string) =>
  corral(h.data, ['cluster', 'join', JOIN_URL, '--token', token, '--name', h.name, '--address', h.address]);

function startServe(h: typeof A): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', h.ns, process.execPath, CLI, 'serve', '--data', h.data, '--listen', '127.0.0.1:0'], {
    env: { ...process.env, CORRAL_ACCEL: 'tcg' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  h.serve = child;
  child.stdout!.on('data', (d: Buffer) => (h.log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (h.log += d.toString()));
  return waitFor(
    `corral serve on ${h.name}`,
    () => {
      if (child.exitCode !== null) throw new Error(`serve on ${h.name} exited: ${h.log}`);
      return /\n(No users|Users log in)/.test(h.log);
    },
    60_000,
  ).then(() => undefined);
}

/** Calls A's peer API with a client certificate (or none); resolves with the HTTP status or the error. */
function peerCall(cert?: { cert: Buffer; key: Buffer }): Promise<string> {
  return new Promise((resolve) => {
    const req = https.request(
      {
        host: A.address,
        port: PEER_PORT,
        method: 'POST',
        path: '/call',
        rejectUnauthorized: false,
        ...(cert ?? {}),
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(`${res.statusCode} ${body}`));
      },
    );
    req.on('error', (err) => resolve(`refused: ${err.message}`));
    req.end(JSON.stringify({ method: 'vm.list', args: {} }));
  });
}

beforeAll(async () => {
  ip('link', 'add', BRIDGE, 'type', 'bridge');
  ip('addr', 'add', `10.77.${NET}.254/24`, 'dev', BRIDGE);
  ip('link', 'set', BRIDGE, 'up');
  for (const h of HOSTS) {
    ip('netns', 'add', h.ns);
    ip('link', 'add', h.veth, 'type', 'veth', 'peer', 'name', `${h.veth}p`);
    ip('link', 'set', `${h.veth}p`, 'netns', h.ns);
    ip('-n', h.ns, 'link', 'set', `${h.veth}p`, 'name', 'eth0');
    ip('-n', h.ns, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0');
    ip('-n', h.ns, 'link', 'set', 'eth0', 'up');
    ip('-n', h.ns, 'link', 'set', 'lo', 'up');
    ip('link', 'set', h.veth, 'master', BRIDGE, 'up');
  }
  await Promise.all(HOSTS.map(startServe));
  for (const h of [A, C]) await ok(h.data, ['pool', 'add', 'fixtures', FIXTURE_DIR]);
});

afterAll(async () => {
  for (const h of HOSTS) {
    const child = h.serve;
    if (!child || child.exitCode !== null) continue;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 30_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  for (const h of HOSTS) {
    const vmsDir = path.join(h.data, 'vms');
    if (fs.existsSync(vmsDir))
      for (const id of fs.readdirSync(vmsDir))
        for (const pid of qemuPidsFor(path.join(vmsDir, id, 'run', 'qemu.pid'))) process.kill(pid, 'SIGKILL');
    // a clustered host's fencer outlives its serve on purpose: end it with the test
    const fencer = findFencer(fencerFiles(path.join(h.data, 'ha')));
    if (fencer) process.kill(fencer, 'SIGKILL');
    tryIp('netns', 'del', h.ns);
    tryIp('link', 'del', h.veth);
    fs.rmSync(h.data, { recursive: true, force: true });
  }
  tryIp('link', 'del', BRIDGE);
});

describe('a cluster of three hosts', () => {
  let firstToken = '';

  it('forms with init and join; a reused, wrong or foreign token is refused and changes nothing', async () => {
    // a single host has no cluster, and nothing of it runs
    expect((await status(A)).clustered).toBe(false);
    const t = JSON.parse(await ok(A.data, ['cluster', 'init', '--name', 'a', '--address', A.address, '--json'])) as JoinTicket;
    expect(t.command).toContain(`corral cluster join ${JOIN_URL} --token corral1.`);
    firstToken = t.token;
    const joined = await join(B, t.token);
    expect(joined.stderr).toBe('');
    expect(joined.stdout).toMatch(/Joined: 2 host\(s\); this host is an etcd member/);

    const reused = await join(C, t.token);
    expect(reused.code).toBe(1);
    expect(reused.stderr).toMatch(/token is not valid: it is wrong, already used or expired/);
    const wrong = await join(C, t.token.replace(/\.[^.]+$/, '.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'));
    expect(wrong.stderr).toMatch(/token is not valid/);
    const foreign = await join(C, t.token.replace(/corral1\.[0-9a-f]{64}/, `corral1.${'ab'.repeat(32)}`));
    expect(foreign.stderr).toMatch(/belongs to another cluster: its CA fingerprint is/);
    // nothing changed: C is no member, A still counts two hosts
    expect(fs.existsSync(path.join(C.data, 'cluster'))).toBe(false);
    expect((await status(C)).clustered).toBe(false);
    expect((await status(A)).hosts).toHaveLength(2);

    const joinedC = await join(C, (await ticket()).token);
    expect(joinedC.code, joinedC.stderr).toBe(0);
    const s = await waitFor('three reporting hosts', async () => {
      const st = await status(A);
      return st.hosts.filter((h) => h.reporting).length === 3 && st.members.every((m) => m.started) ? st : null;
    });
    expect(s.hosts.map((h) => h.name).sort()).toEqual(['a', 'b', 'c']);
    expect(s.members).toHaveLength(3);
    expect(s.hosts.every((h) => h.etcdRole === 'member')).toBe(true);
    expect(s.leader).toMatch(/^h[0-9a-f]{16}$/);
    const text = await ok(B.data, ['cluster', 'status']);
    expect(text).toMatch(/b \(this host\)\s+10\.77\.\d+\.2\s+member\s+reporting/);
    expect(text).toMatch(/leader/);
    // the private keys are the host's own
    expect(fs.statSync(path.join(A.data, 'cluster', 'host-key.pem')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(A.data, 'cluster', 'ca-key.pem')).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(B.data, 'cluster', 'ca-key.pem'))).toBe(false);
    expect(firstToken).not.toBe('');
  });

  it("takes only the cluster's hosts on the peer API: no certificate or another CA's is refused", async () => {
    const own = {
      cert: fs.readFileSync(path.join(B.data, 'cluster', 'host.pem')),
      key: fs.readFileSync(path.join(B.data, 'cluster', 'host-key.pem')),
    };
    expect(await peerCall(own)).toMatch(/^200 /);
    expect(await peerCall()).toMatch(/^refused/);
    // a certificate with the same shape from a CA of its own
    const dir = tempDir('corral-forged-');
    try {
      const o = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
      o(
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
        '-days',
        '1',
        '-subj',
        '/CN=other',
      );
      o(
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        'h.key',
        '-out',
        'h.csr',
        '-subj',
        `/O=Corral/CN=${(await status(A)).hosts.find((h) => h.name === 'b')!.id}`,
      );
      o('x509', '-req', '-in', 'h.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '7', '-days', '1', '-out', 'h.pem');
      const forged = { cert: fs.readFileSync(path.join(dir, 'h.pem')), key: fs.readFileSync(path.join(dir, 'h.key')) };
      expect(await peerCall(forged)).toMatch(/^refused/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lists a VM of host C on host A, live, and A stops it on C', async () => {
    await ok(C.data, ['vm', 'create', 'on-c', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--memory', '128M', '--host', 'c']);
    const seen = await waitFor("the VM of C in A's inventory", async () => (await list(A)).find((v) => v.name === 'on-c'));
    expect(seen.host).toMatchObject({ name: 'c', reporting: true });
    expect(seen.state).toBe('stopped');
    // names are the cluster's: A cannot make another "on-c"
    const dup = await corral(A.data, ['vm', 'create', 'on-c', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd]);
    expect(dup.stderr).toMatch(/a VM named "on-c" already exists in the cluster/);

    await ok(C.data, ['vm', 'start', 'on-c']);
    await waitFor('A to see it running', async () => (await list(A)).find((v) => v.name === 'on-c')?.state === 'running');
    const table = await ok(A.data, ['vm', 'list']);
    expect(table).toMatch(/on-c\s+c\s+running/);

    // an action from A is carried out by C, which owns the VM
    await ok(A.data, ['vm', 'stop', 'on-c']);
    const onC = (await list(C)).find((v) => v.name === 'on-c')!;
    expect(onC.state).toBe('stopped');
    expect(onC.host?.name).toBe('c');
    await waitFor('A to see it stopped', async () => (await list(A)).find((v) => v.name === 'on-c')?.state === 'stopped');
    // C's audit log names the host that asked
    const audit = JSON.parse(await ok(C.data, ['audit', '--json'])) as Array<{ who: string; method: string }>;
    expect(audit.find((e) => e.method === 'vm.stop')?.who).toBe('host:a');
  });

  it('keeps its cluster across a restart of corral serve: etcd starts again, the inventory comes back', async () => {
    const child = A.serve!;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
    A.log = '';
    await startServe(A);
    const s = await waitFor(
      'A back in the cluster',
      async () => {
        const st = await status(A);
        return st.clustered && st.hosts.filter((h) => h.reporting).length === 3 && st.members.filter((m) => m.started).length === 3
          ? st
          : null;
      },
      120_000,
    );
    expect(s.hosts.find((h) => h.self)?.name).toBe('a');
    expect((await list(A)).find((v) => v.name === 'on-c')?.host?.name).toBe('c');
  });

  it('revokes the certificate of a host that leaves', async () => {
    const old = {
      cert: fs.readFileSync(path.join(B.data, 'cluster', 'host.pem')),
      key: fs.readFileSync(path.join(B.data, 'cluster', 'host-key.pem')),
    };
    await ok(B.data, ['cluster', 'leave']);
    expect((await status(B)).clustered).toBe(false);
    const s = await waitFor('A to count two hosts', async () => {
      const st = await status(A);
      return st.hosts.length === 2 && st.members.length === 2 ? st : null;
    });
    expect(s.hosts.map((h) => h.name).sort()).toEqual(['a', 'c']);
    expect(await peerCall(old)).toMatch(/^refused|^403 .*left the cluster/);
  });
});
