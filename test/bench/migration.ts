// The migration group: a live migration of a 512 MiB guest on shared storage between two
// `corral serve` processes, beside the floor: two bare QEMUs driven by hand over QMP with the
// same TLS credentials and the same parameters (auto-converge, 300 ms downtime limit).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MIGRATION_TLS, MigrationCommands } from '../../electron/core/qemu/migration-commands';
import { QmpClient } from '../../electron/core/qemu/qmp';
import { caIn, writeCreds } from '../../electron/core/qemu/tls-creds';
import { BOOT_MS, FIXTURE, freePort, tempDir, waitFor } from '../helpers';
import { corral, ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';
import { ms, type Row } from './lib';

const MEMORY = '512M';
const DOWNTIME_MS = 300;

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
    '/CN=corral-bench-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

/** Two bare QEMUs of the same guest: the source boots, the target waits; migrated over TLS by hand. */
async function bareMigration(root: string, image: string): Promise<{ totalMs: number; downtimeMs: number }> {
  const ca = caIn(path.join(root, 'a', 'migration-ca'))!;
  const common = (name: string, disk: string) => [
    '-nodefaults',
    '-machine',
    'q35',
    '-accel',
    'tcg',
    '-m',
    MEMORY,
    '-display',
    'none',
    '-kernel',
    FIXTURE.kernel,
    '-initrd',
    FIXTURE.initrd,
    '-append',
    'console=ttyS0 quiet',
    '-blockdev',
    JSON.stringify({ driver: 'qcow2', 'node-name': 'disk0', file: { driver: 'file', filename: disk } }),
    '-device',
    'virtio-blk-pci,drive=disk0',
    '-serial',
    `file:${path.join(root, `${name}.serial`)}`,
    '-qmp',
    `unix:${path.join(root, `${name}.qmp`)},server=on,wait=off`,
  ];
  const port = await freePort();
  const src = spawn('qemu-system-x86_64', common('src', image), { stdio: 'ignore' });
  let dst: ReturnType<typeof spawn> | null = null;
  try {
    const qs = await waitFor('bare source QMP', () => QmpClient.connect(path.join(root, 'src.qmp')).catch(() => null), 30_000, 100);
    await waitFor(
      'the bare guest to boot',
      () => fs.readFileSync(path.join(root, 'src.serial'), 'utf8').includes(FIXTURE.banner),
      BOOT_MS,
      250,
    );
    // from here as in Corral's figure: the target started, TLS set up, the stream, the switch-over
    const t0 = performance.now();
    dst = spawn('qemu-system-x86_64', [...common('dst', image), '-incoming', 'defer'], { stdio: 'ignore' });
    const qd = await waitFor('bare target QMP', () => QmpClient.connect(path.join(root, 'dst.qmp')).catch(() => null), 30_000, 20);
    const s = new MigrationCommands(qs);
    const d = new MigrationCommands(qd);
    for (const [m, endpoint, dir] of [
      [s, 'client', path.join(root, 'creds-src')],
      [d, 'server', path.join(root, 'creds-dst')],
    ] as const) {
      fs.mkdirSync(dir, { mode: 0o700 });
      await writeCreds(dir, ca, endpoint, ['127.0.0.1'], 'bare');
      await m.addTlsCreds(dir, endpoint);
      await m.setParameters({ tlsCreds: MIGRATION_TLS });
    }
    await d.incoming(`tcp:127.0.0.1:${port}`);
    await s.setCapabilities({ 'auto-converge': true });
    await s.setParameters({ downtimeLimitMs: DOWNTIME_MS });
    await s.migrate(`tcp:127.0.0.1:${port}`);
    for (;;) {
      const info = await s.query();
      if (info.status === 'completed') {
        await qd.execute('cont');
        return { totalMs: performance.now() - t0, downtimeMs: info.downtime ?? NaN };
      }
      if (info.status === 'failed' || info.status === 'cancelled') throw new Error(`bare migration ${info.status}`);
      await sleep(50);
    }
  } finally {
    src.kill('SIGKILL');
    dst?.kill('SIGKILL');
  }
}

export async function migrationRows(): Promise<Row[]> {
  const root = tempDir('corral-bench-mig-');
  const shared = path.join(root, 'shared');
  fs.mkdirSync(shared);
  for (const h of ['a', 'b']) {
    fs.mkdirSync(path.join(root, h), { mode: 0o700 });
  }
  makeCa(path.join(root, 'a', 'migration-ca'));
  fs.cpSync(path.join(root, 'a', 'migration-ca'), path.join(root, 'b', 'migration-ca'), { recursive: true });
  const image = path.join(shared, 'disk.qcow2');
  const bareImage = path.join(shared, 'bare.qcow2');
  for (const f of [image, bareImage]) execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', f, '64M']);
  const dataA = path.join(root, 'a');
  const dataB = path.join(root, 'b');
  const [a, b] = await Promise.all([ServeProcess.start(dataA), ServeProcess.start(dataB)]);
  try {
    for (const d of [dataA, dataB]) await corral(d, ['pool', 'add', 'shared', shared]);
    const boot = ['--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--append', 'console=ttyS0 quiet'];
    await corral(dataA, ['vm', 'create', 'bench-mover', ...boot, '--memory', MEMORY, '--disk-image', image]);
    await corral(dataA, ['vm', 'start', 'bench-mover']);
    const api = await WsApi.connect(a.port, a.token);
    await waitFor(
      'the guest to boot',
      async () =>
        Buffer.from((await api.call('serial.log', { vm: 'bench-mover' })).data, 'base64')
          .toString()
          .includes(FIXTURE.banner),
      BOOT_MS,
      250,
    );
    const r = await api.call('vm.migrate', {
      vm: 'bench-mover',
      to: `http://127.0.0.1:${b.port}`,
      token: b.token,
      maxDowntimeMs: DOWNTIME_MS,
    });
    api.close();
    const floor = await bareMigration(root, bareImage);
    return [
      {
        name: `live migration, ${MEMORY} RAM, shared storage: total`,
        value: ms(r.totalMs),
        floor: `${ms(floor.totalMs)} (bare QEMU pair, same TLS)`,
        target: '≤ 1.2 × floor',
        ok: r.totalMs <= 1.2 * floor.totalMs,
      },
      {
        name: `live migration, ${MEMORY} RAM, shared storage: downtime`,
        value: ms(r.downtimeMs ?? NaN),
        floor: `${ms(floor.downtimeMs)} (bare QEMU pair, same TLS)`,
        target: '≤ 1.5 × floor',
        ok: (r.downtimeMs ?? Infinity) <= 1.5 * floor.downtimeMs,
      },
    ];
  } finally {
    for (const d of [dataB, dataA]) await corral(d, ['vm', 'kill', 'bench-mover']);
    await Promise.all([a.stop(), b.stop()]);
    fs.rmSync(root, { recursive: true, force: true });
  }
}
