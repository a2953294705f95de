// HA rows: the partition margin (how long before etcd expires a cut-off host's lease its fencer
// has killed the guarded process; minimum over rounds, never negative) and the CPU an idle host
// pays for HA (its etcd member and its fencer), on a real 3-member etcd on loopback; and, on
// three real `corral serve` hosts in network namespaces (integration/ha-cluster.ts), that cost
// again with everything the hosts run, and host death → its HA guest running on another host,
// over rounds that kill a different host each time.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { HA_MARGIN_MS, HA_TTL_SEC } from '../../electron/core/cluster/ha-host';
import { findFencer, readFenceRecord } from '../../electron/core/ha/fencer/client';
import { fencerFiles } from '../../electron/core/ha/fencer/protocol';
import { monotonicMs } from '../../electron/core/ha/monotonic';
import { processStartTime } from '../../electron/core/qemu/proc';
import { tempDir, waitFor } from '../helpers';
import { EtcdCluster } from '../integration/etcd-cluster';
import * as cluster from '../integration/ha-cluster';
import { median, type Row } from './lib';

const ROOT = path.join(__dirname, '..', '..');
const FENCER_ENTRY = path.join(ROOT, 'out', 'electron', 'core', 'ha', 'fencer', 'main.js');
const HOST_SCRIPT = path.join(ROOT, 'test', 'integration', 'ha-host-process.ts');

interface HostProc {
  child: ChildProcess;
  dir: string;
}

async function hostProcess(id: string, etcdHosts: string[], guardPid: number): Promise<HostProc> {
  const dir = path.join(tempDir('corral-bench-ha-'), 'ha');
  const guards = [{ vm: 'guest', pid: guardPid, startTime: processStartTime(guardPid)! }];
  // the product's figures (cluster/ha-host.ts)
  const cfg = { etcdHosts, hostId: id, fencerDir: dir, fencerEntry: FENCER_ENTRY, ttlSec: HA_TTL_SEC, marginMs: HA_MARGIN_MS, guards };
  const child = spawn(process.execPath, ['--import', 'tsx', HOST_SCRIPT], {
    cwd: ROOT,
    env: { ...process.env, CORRAL_HA_HOST: JSON.stringify(cfg) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let ready = false;
  readline.createInterface({ input: child.stdout! }).on('line', (l) => (ready ||= l.includes('"ready"')));
  await waitFor('the host to take its lease', () => ready, 120_000, 50);
  return { child, dir };
}

function endHost(h: HostProc): void {
  h.child.kill('SIGKILL');
  const pid = findFencer(fencerFiles(h.dir));
  if (pid) process.kill(pid, 'SIGKILL');
  fs.rmSync(path.dirname(h.dir), { recursive: true, force: true });
}

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(x[11]) + Number(x[12])) / 100; // USER_HZ
}

async function partitionMargin(etcd: EtcdCluster, rounds: number): Promise<Row> {
  const margins: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const member = etcd.members[i % 3]!;
    const guest = spawn('sleep', ['600'], { stdio: 'ignore' });
    await waitFor('the guarded process', () => processStartTime(guest.pid!));
    const host = await hostProcess(`bench${i}`, [member.clientUrl], guest.pid!);
    const watcher = etcd.client((i + 1) % 3);
    try {
      const w = await watcher.watch().key(`corral/hosts/bench${i}/alive`).create();
      const deleted = new Promise<number>((resolve) => w.on('delete', () => resolve(monotonicMs())));
      await sleep(3000);
      member.child.kill('SIGSTOP'); // the host's only way to the cluster freezes: it is cut off
      let deletedAt: number;
      try {
        deletedAt = await deleted;
      } finally {
        member.child.kill('SIGCONT');
      }
      const rec = await waitFor('the fence', () => readFenceRecord(host.dir), 30_000);
      if (!rec.killed.length) throw new Error(`round ${i}: the fencer killed nothing`);
      margins.push(deletedAt - rec.firedMs);
      await w.cancel();
    } finally {
      watcher.close();
      endHost(host);
      guest.kill('SIGKILL');
    }
    await sleep(3000); // the thawed member catches up before the next round
  }
  const min = Math.min(...margins);
  return {
    name: `HA partition: fence before lease expiry at etcd (TTL ${HA_TTL_SEC} s, margin ${HA_MARGIN_MS / 1000} s, min of ${rounds})`,
    value: `${(min / 1000).toFixed(2)} s (all: ${margins.map((m) => (m / 1000).toFixed(2)).join(', ')})`,
    floor: '-',
    target: '≥ 2 s',
    ok: min >= 2000,
  };
}

/** The floor of both idle rows: one member of a 3-member etcd with the same tuning and no client at all. */
async function bareMemberCost(etcd: EtcdCluster, secs: number): Promise<string> {
  const pid = etcd.members[0]!.child.pid!;
  await sleep(5000);
  const [c0, t0] = [cpuSeconds(pid), performance.now()];
  await sleep(secs * 1000);
  const pct = ((cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000)) * 100;
  return `bare etcd member, no client: ${pct.toFixed(2)} %`;
}

async function idleCost(etcd: EtcdCluster, secs: number, floor: string): Promise<Row> {
  const guest = spawn('sleep', ['600'], { stdio: 'ignore' });
  await waitFor('the guarded process', () => processStartTime(guest.pid!));
  const host = await hostProcess(
    'idle',
    etcd.members.map((m) => m.clientUrl),
    guest.pid!,
  );
  try {
    const fencer = findFencer(fencerFiles(host.dir))!;
    const etcdPid = etcd.members[0]!.child.pid!;
    await sleep(5000);
    const [e0, f0, t0] = [cpuSeconds(etcdPid), cpuSeconds(fencer), performance.now()];
    await sleep(secs * 1000);
    const wall = (performance.now() - t0) / 1000;
    const etcdPct = ((cpuSeconds(etcdPid) - e0) / wall) * 100;
    const fencerPct = ((cpuSeconds(fencer) - f0) / wall) * 100;
    const total = etcdPct + fencerPct;
    return {
      name: `HA idle host: its etcd member + fencer CPU (${secs} s)`,
      value: `${total.toFixed(2)} % of a core (etcd ${etcdPct.toFixed(2)}, fencer ${fencerPct.toFixed(2)})`,
      floor,
      target: '< 1 %',
      ok: total < 1,
    };
  } finally {
    endHost(host);
    guest.kill('SIGKILL');
  }
}

/** The etcd member a host of the namespace cluster runs: the etcd process whose argv names its data dir. */
function etcdOfHost(h: cluster.HostT): number {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('etcd') && argv.some((a) => a.startsWith(h.data))) return Number(d);
    } catch {
      // raced with an exiting process
    }
  }
  throw new Error(`no etcd member runs for host ${h.name}`);
}

/**
 * The same cost on a real idle cluster: three `corral serve` hosts, host A (which made the
 * cluster and runs the HA guest, so its fencer is armed) with its member as etcd runs it and
 * every watch and poll of the hosts.
 */
async function clusterIdleCost(h: cluster.HostT, secs: number, floor: string): Promise<Row> {
  const etcdPid = etcdOfHost(h);
  const fencer = findFencer(fencerFiles(path.join(h.data, 'ha')));
  if (!fencer) throw new Error(`host ${h.name} runs no fencer`);
  await sleep(5000);
  const [e0, f0, t0] = [cpuSeconds(etcdPid), cpuSeconds(fencer), performance.now()];
  await sleep(secs * 1000);
  const wall = (performance.now() - t0) / 1000;
  const etcdPct = ((cpuSeconds(etcdPid) - e0) / wall) * 100;
  const fencerPct = ((cpuSeconds(fencer) - f0) / wall) * 100;
  const total = etcdPct + fencerPct;
  return {
    name: `HA idle 3-host cluster (corral serve): host ${h.name}'s etcd member + fencer CPU (${secs} s)`,
    value: `${total.toFixed(2)} % of a core (etcd ${etcdPct.toFixed(2)}, fencer ${fencerPct.toFixed(2)})`,
    floor,
    target: '< 1 %',
    ok: total < 1,
  };
}

const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)]!;

/** Kills every process of the HA guest's host at once, times until it runs elsewhere, brings the host back. */
async function hostDeath(rounds: number, floor: string): Promise<Row[]> {
  const { ok, list, haStatus, killHost, startServe, whereRunning, byName, HOSTS } = cluster;
  await cluster.formCluster();
  const took: number[] = [];
  let idle: Row;
  try {
    await cluster.haGuest(cluster.A, 'bench-ha');
    idle = await clusterIdleCost(cluster.A, Number(process.env.BENCH_CPU_SECONDS ?? 30), floor);
    for (let i = 0; i < rounds; i++) {
      const on = (await list(cluster.B)).find((v) => v.name === 'bench-ha') as { host?: { name: string }; state: string } | undefined;
      const owner = byName(on?.host?.name ?? 'a');
      const viewer = HOSTS.find((h) => h !== owner)!;
      const t0 = performance.now();
      killHost(owner);
      await whereRunning(viewer, owner.name, 'bench-ha');
      took.push(performance.now() - t0);
      // the dead host comes back and holds its HA lease before the next round
      await startServe(owner);
      await waitFor(`${owner.name} back`, async () => (await haStatus(owner)).startBlocker === null, 180_000, 1000);
    }
    await ok(byName(((await haStatus(cluster.A)).vms.find((v) => v.name === 'bench-ha')?.owner ?? 'a') as string), [
      'vm',
      'kill',
      'bench-ha',
    ]).catch(() => undefined);
  } finally {
    cluster.teardown();
  }
  const s = (x: number) => `${(x / 1000).toFixed(1)} s`;
  return [
    idle,
    {
      name: `HA host death → its HA guest running elsewhere (3 hosts, TTL 10 s, median of ${took.length})`,
      value: `${s(median(took))} (all: ${took.map((t) => (t / 1000).toFixed(1)).join(', ')})`,
      floor: '-',
      target: '-',
      ok: took.length === rounds,
    },
    {
      name: `HA host death → its HA guest running elsewhere, p95 of ${took.length}`,
      value: s(p95(took)),
      floor: 'Proxmox documents ~120 s',
      target: 'p95 ≤ 20 s',
      ok: p95(took) <= 20_000,
    },
  ];
}

export async function haRows(): Promise<Row[]> {
  if (!fs.existsSync(FENCER_ENTRY)) throw new Error('run npm run build first (the fencer runs from out/)');
  const rows: Row[] = [];
  const secs = Number(process.env.BENCH_CPU_SECONDS ?? 30);
  const etcd = await EtcdCluster.start(3);
  let floor: string;
  try {
    floor = await bareMemberCost(etcd, secs);
    const rounds = Number(process.env.BENCH_HA_ROUNDS ?? 3);
    rows.push(await partitionMargin(etcd, rounds), await idleCost(etcd, secs, floor));
  } finally {
    etcd.stop();
  }
  rows.push(...(await hostDeath(Number(process.env.BENCH_HA_DEATH_ROUNDS ?? 10), floor)));
  return rows;
}
