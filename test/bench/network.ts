// Guest ↔ host TCP throughput per NIC kind (issue 13): passt and user (slirp) from the host into
// the guest through a forward, and a private network from one guest to another. Two VMs Corral
// runs (A: passt, user and private NICs; B: the same private network), then the same two argv
// by hand in the same run (the floor): bare QEMU, the passt NIC given QEMU's own unix-socket
// netdev and a passt started by hand with the same forwards. Every transfer is counted by the
// receiving guest (wc -c), so a refused or cut connection is an error, not a figure.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONFIG_DEFAULTS, type Nic } from '../../electron/core/api/contract';
import { Host } from '../../electron/core/host/host';
import { buildArgv } from '../../electron/core/qemu/argv';
import { passtForwardArgs } from '../../electron/core/qemu/passt';
import { vmFiles } from '../../electron/core/paths';
import { BOOT_MS, FIXTURE, FIXTURE_DIR, freePort, tempDir } from '../helpers';
import { median, type Row } from './lib';
import { shellOn, until, type Shell } from './shares';

const MIB = Number(process.env.BENCH_NET_MIB ?? 32);
const RUNS = Number(process.env.BENCH_NET_RUNS ?? 3);
/** Less over a private network: QEMU's multicast socket netdev moves well under 1 MB/s here. */
const PRIVATE_MIB = Math.max(1, MIB / 4);
const GUEST_PORT = { passt: 5001, user: 5002, private: 5003 } as const;
const PRIVATE_NET = '192.168.77';

type Rates = { passt: number; user: number; private: number };

/** Host → guest through a forward: connect, write MIB MiB, end; done when the guest closes. */
function upload(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(1 << 20, 0x5a);
    let left = MIB;
    const t0 = performance.now();
    const s = net.createConnection({ host: '127.0.0.1', port }, () => {
      const pump = () => {
        while (left > 0) {
          left--;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
    s.setTimeout(300_000, () => s.destroy(new Error(`no progress on port ${port}`)));
    s.on('data', () => undefined);
    s.once('error', reject);
    s.once('close', () => resolve((MIB * 1024 * 1024) / ((performance.now() - t0) / 1000) / 1e6));
  });
}

/** busybox time's "real 0m 1.23s" → seconds. */
function realSeconds(out: string): number {
  const m = /real\s+(\d+)m\s*([\d.]+)s/.exec(out);
  if (!m) throw new Error(`no time figure in ${JSON.stringify(out.slice(-300))}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/**
 * A listener in the guest that counts what it receives into /tmp/got (one connection). Its
 * stdin is a pipe that stays open: at EOF nc would half-close, and this passt (2023-03) stops
 * passing data to a guest that has half-closed.
 */
async function listen(shell: Shell, port: number): Promise<void> {
  // the last round's listeners hold their connections half-closed (see above): closed now, so
  // that passt has forgotten them when the next connection comes (it reset it otherwise)
  await shell.run('killall nc 2>/dev/null; sleep 1');
  await shell.run(`rm -f /tmp/got; (sleep 900 | nc -l -p ${port} | wc -c >/tmp/got &)`);
  // a loaded TCG guest may take seconds to get there: connecting earlier is refused
  const up = await shell.run(`for i in $(seq 100); do netstat -ltn | grep -q ':${port} ' && echo LISTENING && break; sleep 0.2; done`);
  if (!up.includes('LISTENING')) throw new Error(`nothing listens on the guest's port ${port}`);
}

async function received(shell: Shell, mib = MIB): Promise<void> {
  const want = mib * 1024 * 1024;
  for (let i = 0; i < 20; i++) {
    const got = /(\d+)\s*$/.exec((await shell.run('cat /tmp/got 2>/dev/null')).trim());
    if (got && Number(got[1]) === want) return;
    if (got && got[1] !== '0') throw new Error(`the guest received ${got[1]} bytes, not ${want}`);
    await sleep(500);
  }
  throw new Error('the guest never counted what it received');
}

/** The guest's interface with this MAC brought up with a static address. */
const ifaceUp = (mac: string, cidr: string) =>
  `IF=$(grep -l ${mac} /sys/class/net/*/address | cut -d/ -f5); ip addr add ${cidr} dev $IF; ip link set $IF up`;

async function measure(a: Shell, b: Shell, nics: Nic[], ports: { passt: number; user: number }): Promise<Rates> {
  const [, user, priv] = nics;
  // the guest takes passt's DHCP lease in the background after its banner: until then passt's
  // SYNs go unanswered and it resets the host's connection
  const leased = await a.run('for i in $(seq 300); do [ -s /run/eth0.ip ] && echo LEASED && break; sleep 0.2; done');
  if (!leased.includes('LEASED')) throw new Error("the guest never took passt's DHCP lease");
  await a.run(ifaceUp(user!.mac, '10.0.2.15/24'));
  await a.run(ifaceUp(priv!.mac, `${PRIVATE_NET}.1/24`));
  // B's only NIC is on the private network: no DHCP there, so no udhcpc to undo the address
  await b.run(`killall udhcpc; ip addr flush dev eth0; ip addr add ${PRIVATE_NET}.2/24 dev eth0; ip link set eth0 up`);
  const runs: Record<keyof Rates, number[]> = { passt: [], user: [], private: [] };
  for (let i = 0; i < RUNS; i++) {
    for (const kind of ['passt', 'user'] as const) {
      await listen(a, GUEST_PORT[kind]);
      runs[kind].push(
        await upload(ports[kind]).catch((err: Error) => {
          throw new Error(`${kind} upload ${i + 1} to port ${ports[kind]}: ${err.message}`);
        }),
      );
      await received(a);
    }
    await listen(b, GUEST_PORT.private);
    const out = await a.run(
      `time sh -c 'dd if=/dev/zero bs=64k count=${PRIVATE_MIB * 16} 2>/dev/null | nc ${PRIVATE_NET}.2 ${GUEST_PORT.private}'`,
    );
    runs.private.push((PRIVATE_MIB * 1024 * 1024) / realSeconds(out) / 1e6);
    await received(b, PRIVATE_MIB);
  }
  console.error(`network rounds (MB/s): ${JSON.stringify(runs)}`);
  return { passt: median(runs.passt), user: median(runs.user), private: median(runs.private) };
}

/** A bare QEMU's serial socket as a shell (the guest is booted by the time it answers). */
async function bareShell(sock: string): Promise<{ shell: Shell; close(): void }> {
  await until('the serial socket', () => fs.existsSync(sock), 30_000);
  let text = '';
  const conn = net.createConnection(sock);
  conn.on('data', (d: Buffer) => (text += d.toString('latin1')));
  await until('the bare guest to boot', () => text.includes(FIXTURE.banner), BOOT_MS);
  await sleep(1000);
  return {
    shell: shellOn(
      () => text,
      (s) => conn.write(s),
    ),
    close: () => conn.destroy(),
  };
}

export async function networkRows(): Promise<Row[]> {
  const dataDir = tempDir('corral-bench-');
  const env = { ...process.env, CORRAL_ACCEL: 'tcg' };
  const host = await Host.start({ dataDir, kind: 'bench', env });
  const children: ChildProcess[] = [];
  const closers: Array<() => void> = [];
  try {
    host.vms.pools.add('fixtures', FIXTURE_DIR);
    const ports = { passt: await freePort(), user: await freePort() };
    const fwd = (hostPort: number, guestPort: number) => [
      { proto: 'tcp' as const, hostAddr: '127.0.0.1', hostPort, guestPort, exposed: false },
    ];
    const base = { ...CONFIG_DEFAULTS, memoryMiB: 256, kernel: FIXTURE.kernel, initrd: FIXTURE.initrd, append: 'console=ttyS0 quiet' };
    const a = await host.vms.service.create({
      ...base,
      name: 'net-a',
      disk: null,
      nics: [
        { kind: 'passt', bridge: null, network: null, forwards: fwd(ports.passt, GUEST_PORT.passt) },
        { kind: 'user', bridge: null, network: null, forwards: fwd(ports.user, GUEST_PORT.user) },
        { kind: 'private', bridge: null, network: 'bench', forwards: [] },
      ],
    });
    const b = await host.vms.service.create({
      ...base,
      name: 'net-b',
      disk: null,
      nics: [{ kind: 'private', bridge: null, network: 'bench', forwards: [] }],
    });
    const shells: Shell[] = [];
    for (const vm of [a, b]) {
      await host.vms.lifecycle.start(vm.id);
      const files = vmFiles(host.layout, vm.id);
      const log = () => (fs.existsSync(files.serialLog) ? fs.readFileSync(files.serialLog, 'latin1') : '');
      await until('the guest to boot', () => log().includes(FIXTURE.banner), BOOT_MS);
      const link = host.vms.registry.get(vm.id)!.machine.serial!;
      shells.push(shellOn(log, (s) => link.write(Buffer.from(s))));
    }
    const nics = host.vms.service.get(a.id).config.nics;
    const corral = await measure(shells[0]!, shells[1]!, nics, ports);
    for (const vm of [a, b]) await host.vms.lifecycle.stop(vm.id, 0);

    // by hand: the same argv, files moved aside, held at nothing (no -S); A's passt NIC on
    // QEMU's own unix-socket stream netdev, with a passt started here beside it
    const bare: Shell[] = [];
    for (const vm of [a, b]) {
      const dir = path.join(dataDir, `by-hand-${vm.name}`);
      fs.mkdirSync(dir, { mode: 0o700 });
      const files = {
        ...vmFiles(host.layout, vm.id),
        runDir: dir,
        dir,
        pidFile: path.join(dir, 'qemu.pid'),
        qmpSocket: path.join(dir, 'qmp.sock'),
        serialSocket: path.join(dir, 'serial.sock'),
        serialLog: path.join(dir, 'serial.log'),
        vncSocket: path.join(dir, 'vnc.sock'),
        qgaSocket: path.join(dir, 'qga.sock'),
      };
      const config = host.vms.service.get(vm.id).config;
      const passtNic = config.nics.find((n) => n.kind === 'passt');
      const argv = buildArgv(
        { id: vm.id, name: vm.name, config, files, passtFds: new Map(passtNic ? [[passtNic.id, 3]] : []) },
        { ...host.caps, hostKey: host.layout.root },
      ).filter((x) => x !== '-S');
      if (passtNic) {
        // as root passt drops to nobody unless told whom to run as, and then cannot bind in a
        // private dir: it runs as the user Corral runs its passts as, in a dir of that user's
        // (under the system's temp dir: the bench's own data dir is closed to other users)
        const info = (await host.dispatcher.handle(
          host.session('bench', () => undefined),
          { id: 1, method: 'host.info', args: {} },
        )) as {
          result?: { qemu: { runsAs: string | null } };
        };
        const user = info.result?.qemu.runsAs ?? null;
        const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-bench-passt-'));
        closers.push(() => fs.rmSync(sockDir, { recursive: true, force: true }));
        if (user) {
          const id = (flag: string) => Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
          fs.chownSync(sockDir, id('-u'), id('-g'));
        }
        const sock = path.join(sockDir, 'passt.sock');
        const as = user ? ['--runas', user] : [];
        children.push(
          spawn('passt', ['-f', '-q', ...as, '-s', sock, ...passtForwardArgs(passtNic.forwards)], { stdio: 'ignore', detached: false }),
        );
        await until('passt by hand', () => fs.existsSync(sock), 30_000);
        const at = argv.findIndex((x) => x.startsWith('stream,') && x.includes(`id=${passtNic.id},`));
        argv[at] = `stream,id=${passtNic.id},server=off,addr.type=unix,addr.path=${sock}`;
      }
      children.push(spawn('qemu-system-x86_64', argv, { stdio: 'ignore' }));
      const s = await bareShell(files.serialSocket);
      closers.push(s.close);
      bare.push(s.shell);
    }
    const floor = await measure(bare[0]!, bare[1]!, nics, ports);

    const mbs = (x: number) => `${x.toFixed(1)} MB/s`;
    const what = {
      passt: 'host → guest TCP through a passt forward',
      user: 'host → guest TCP through a user (slirp) forward',
      private: 'guest → guest TCP on a private network',
    };
    return [
      ...(['passt', 'user', 'private'] as const).map((k) => ({
        name: `${what[k]} (${k === 'private' ? PRIVATE_MIB : MIB} MiB, TCG)`,
        value: mbs(corral[k]),
        floor: `${mbs(floor[k])} (bare QEMU, same netdev by hand)`,
        target: `≥ 0.9 × floor = ${mbs(0.9 * floor[k])}`,
        ok: corral[k] >= 0.9 * floor[k],
      })),
      {
        name: 'passt beside user (slirp), same guest, host → guest',
        value: `${mbs(corral.passt)} vs ${mbs(corral.user)}`,
        floor: `${mbs(floor.passt)} vs ${mbs(floor.user)} (by hand)`,
        target: 'passt ≥ slirp',
        ok: corral.passt >= corral.user,
      },
    ];
  } finally {
    for (const c of closers) c();
    for (const c of children) c.kill('SIGKILL');
    await host.close({ stopGuests: true, timeoutSec: 0 });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
