// What accounts cost a call: vm.list of 200 VMs over corral serve's WebSocket, by a logged-in
// user (login cookie: the role check, the session's expiry and the audit table in the path)
// beside the same by the owner's token (no login). Target: at most 1.1x.
import fs from 'node:fs';
import WebSocket from 'ws';
import { startServer } from '../../electron/server/serve';
import { tempDir } from '../helpers';
import { median, ms, type Row } from './lib';

const VMS = 200;
const CALLS = Number(process.env.BENCH_AUTH_CALLS ?? 300);

function open(url: string, headers: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** Median time of one vm.list round trip on this socket. */
async function timeList(ws: WebSocket): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      ws.once('message', (raw) => {
        const msg = JSON.parse(raw.toString()) as { result?: unknown[] };
        if (msg.result?.length !== VMS) reject(new Error(`vm.list gave ${msg.result?.length} VMs`));
        else resolve();
      });
      ws.send(JSON.stringify({ id: i, method: 'vm.list', args: {} }));
    });
    times.push(performance.now() - t0);
  }
  return median(times);
}

export async function authRows(): Promise<Row[]> {
  const dataDir = tempDir('corral-bench-');
  const srv = await startServer({ dataDir, listen: '127.0.0.1:0', env: { ...process.env, CORRAL_ACCEL: 'tcg' } });
  const sockets: WebSocket[] = [];
  try {
    const owner = srv.host.session('bench', () => undefined);
    for (let i = 0; i < VMS; i++)
      await srv.host.dispatcher.handle(owner, { id: i, method: 'vm.create', args: { name: `listed-${i}`, memoryMiB: 64 } });
    await srv.host.accounts.addUser('bench', 'viewer', 'bench-password');
    const base = `http://127.0.0.1:${srv.port}`;
    const login = await fetch(`${base}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'bench', password: 'bench-password' }),
    });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const plain = await open(`ws://127.0.0.1:${srv.port}/api?token=${srv.token}`, {});
    const user = await open(`ws://127.0.0.1:${srv.port}/api`, { cookie });
    sockets.push(plain, user);
    await timeList(plain); // warm up both paths
    await timeList(user);
    // alternate, so that a noisy neighbour weighs on both alike
    const a: number[] = [];
    const b: number[] = [];
    for (let round = 0; round < 3; round++) {
      a.push(await timeList(plain));
      b.push(await timeList(user));
    }
    const without = median(a);
    const withLogin = median(b);
    const ratio = withLogin / without;
    return [
      {
        name: `vm.list of ${VMS} VMs, logged-in session (median of ${CALLS} x 3)`,
        value: `${ms(withLogin)} (${ratio.toFixed(2)}x)`,
        floor: `${ms(without)} without a login`,
        target: '<= 1.1x',
        ok: ratio <= 1.1,
      },
    ];
  } finally {
    sockets.forEach((s) => s.terminate());
    await srv.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
