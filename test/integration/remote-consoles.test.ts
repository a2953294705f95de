// Consoles of a VM on another host of a cluster, opened through this host's API: two real
// `corral serve` processes in network namespaces (the shared harness), a real guest on host B,
// and everything asked of host A's WebSocket API as the browser does: the serial console (type a
// command, see the guest's answer), the display (a whole RFB handshake and a framebuffer update
// relayed over the hosts' mutual TLS), a screenshot and the monitor; a viewer refused what it
// would be refused for a local VM; and B dying ends A's consoles with a reason.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ArgsIn, EvacuationProgress, MethodName, Result } from '../../electron/core/api/contract';
import { ControlClient } from '../../electron/cli/client';
import { dataLayout } from '../../electron/core/paths';
import { BOOT_MS, FIXTURE, FIXTURE_DIR, waitFor } from '../helpers';
import { corral } from './serve-process';
import { NetnsHosts, list, ok, type NsHost } from './netns-hosts';

const hosts = new NetnsHosts(['a', 'b'], 'rcn');
const [A, B] = hosts.hosts as [NsHost, NsHost];

/** A client of host A's WebSocket API, reached over the test's bridge. */
class Api {
  events: Array<{ event: string; payload: Record<string, unknown> }> = [];
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as {
        id?: number;
        result?: unknown;
        error?: { code: string; message: string };
        event?: string;
        payload?: unknown;
      };
      if (m.event) this.events.push({ event: m.event, payload: m.payload as Record<string, unknown> });
      const p = m.id !== undefined ? this.pending.get(m.id) : undefined;
      if (!p) return;
      this.pending.delete(m.id!);
      if (m.error) p.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
      else p.resolve(m.result);
    });
  }

  static open(base: string, token: string): Promise<Api> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/api?token=${encodeURIComponent(token)}`);
      ws.once('open', () => resolve(new Api(ws)));
      ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  call<M extends MethodName>(method: M, args: ArgsIn<M>): Promise<Result<M>> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.ws.send(JSON.stringify({ id, method, args }));
    });
  }

  serialText(vmId: string): string {
    return this.events
      .filter((e) => e.event === 'serial.data' && e.payload.vmId === vmId)
      .map((e) => Buffer.from(e.payload.data as string, 'base64').toString('latin1'))
      .join('');
  }
}

/** Bytes of a WebSocket read on demand: the RFB handshake is a dialogue of exact lengths. */
class Reader {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  closed: { code: number; reason: string } | null = null;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake?.();
    });
  }

  async read(n: number): Promise<Buffer> {
    const deadline = Date.now() + 60_000;
    while (this.buf.length < n) {
      if (this.closed) throw new Error(`the display closed: ${this.closed.code} ${this.closed.reason}`);
      if (Date.now() > deadline) throw new Error(`no ${n} bytes from the display`);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 500);
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
}

/** Opens the display; its reader listens from the start (the greeting may come with the upgrade's answer). */
function openDisplay(base: string, path: string): Promise<{ ws?: WebSocket; rfb?: Reader; status?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}${path}`, ['binary']);
    const rfb = new Reader(ws);
    ws.once('open', () => resolve({ ws, rfb }));
    ws.once('unexpected-response', (_q, res) => resolve({ status: res.statusCode }));
    ws.once('error', () => resolve({ status: -1 }));
  });
}

/** The URL and port host A's serve printed. */
const baseOf = (h: NsHost) => new URL(/Open: (http\S+)/.exec(h.log)![1]!).origin;

let base = '';
let admin: Api;
let viewer: Api;
let vmId = '';

beforeAll(async () => {
  // A serves its API on its namespace's address, so the test (outside) reaches it as a browser would
  await hosts.start((h) => (h === A ? ['--listen', `${A.address}:0`, '--no-tls'] : []));
  await hosts.form();
  await ok(B.data, ['pool', 'add', 'fixtures', FIXTURE_DIR]);
  for (const h of [A, B]) {
    const c = await ControlClient.connect(dataLayout(h.data).controlSocket, h.data);
    await c.call('host.settings', { monitor: true }).finally(() => c.close());
  }
  await ok(B.data, ['vm', 'create', 'far', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--memory', '128M', '--host', 'b']);
  await ok(B.data, ['vm', 'start', 'far']);
  vmId = (await list(B)).find((v) => v.name === 'far')!.id;
  const token = async (user: string, role: string) => {
    const add = await corral(A.data, ['user', 'add', user, '--role', role, '--password-stdin'], 'a long enough password\n');
    if (add.code !== 0) throw new Error(add.stderr);
    return (JSON.parse(await ok(A.data, ['token', 'create', user, '--role', role, '--json'])) as { token: string }).token;
  };
  const adminToken = await token('root', 'admin');
  const viewerToken = await token('watcher', 'viewer');
  base = baseOf(A);
  admin = await Api.open(base, adminToken);
  viewer = await Api.open(base, viewerToken);
  await waitFor('the guest on B to boot', async () => (await ok(B.data, ['vm', 'log', 'far'])).includes(FIXTURE.prompt), BOOT_MS, 1000);
}, BOOT_MS + 400_000);

afterAll(async () => {
  admin?.ws.close();
  viewer?.ws.close();
  await hosts.stop();
  // B is killed below: its etcd member outlived it; nothing of this run may stay behind
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (hosts.hosts.some((h) => cmd.includes(h.data))) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone
    }
  }
}, 120_000);

describe('consoles of a VM on another host', () => {
  it('A lists the VM with host b', async () => {
    const vm = (await admin.call('vm.list', {})).find((v) => v.name === 'far') as { host?: { name: string } } | undefined;
    expect(vm?.host?.name).toBe('b');
  });

  it("the serial console through A's API: a command typed on A, the guest's answer seen on A", async () => {
    await admin.call('serial.attach', { vm: 'far' });
    await admin.call('serial.write', { vm: 'far', data: Buffer.from('echo REMOTE-$((6*7))\n').toString('base64') });
    await waitFor('the answer from the guest on b', () => /REMOTE-42\r?\n/.test(admin.serialText(vmId)), 60_000, 200);
    // positions are the owner's log positions, so the page joins live output to serial.log
    const log = await admin.call('serial.log', { vm: 'far', tailBytes: 4096 });
    expect(Buffer.from(log.data, 'base64').toString()).toContain('REMOTE-42');
  }, 120_000);

  it("the display through A: RFB handshake and a framebuffer update from B's QEMU", async () => {
    const t = await admin.call('console.ticket', { vm: 'far' });
    expect(t.vmId).toBe(vmId);
    const { ws, rfb: reader, status } = await openDisplay(base, t.path);
    expect(status).toBeUndefined();
    const rfb = reader!;
    expect((await rfb.read(12)).toString('latin1')).toBe('RFB 003.008\n');
    ws!.send(Buffer.from('RFB 003.008\n'));
    const n = (await rfb.read(1))[0]!;
    const types = [...(await rfb.read(n))];
    expect(types).toContain(1); // None: the socket is the host's, the ticket was the check
    ws!.send(Buffer.from([1]));
    expect((await rfb.read(4)).readUInt32BE(0)).toBe(0);
    ws!.send(Buffer.from([1])); // ClientInit: shared
    const init = await rfb.read(24);
    const [w, h] = [init.readUInt16BE(0), init.readUInt16BE(2)];
    expect(w).toBeGreaterThan(0);
    await rfb.read(init.readUInt32BE(20)); // the desktop's name
    const req = Buffer.alloc(10);
    req.writeUInt8(3, 0); // FramebufferUpdateRequest, not incremental: the whole screen
    req.writeUInt16BE(w, 6);
    req.writeUInt16BE(h, 8);
    ws!.send(req);
    expect((await rfb.read(1))[0]).toBe(0); // FramebufferUpdate
    ws!.close();
    // a ticket is spent on its first use
    expect((await openDisplay(base, t.path)).status).toBe(403);
  }, 120_000);

  it('a screenshot and the monitor through A', async () => {
    const shot = Buffer.from((await admin.call('vm.screenshot', { vm: 'far' })).png, 'base64');
    expect(shot.subarray(0, 8).toString('latin1')).toBe('\x89PNG\r\n\x1a\n');
    const st = await admin.call('monitor.exec', { vm: 'far', command: 'info status' });
    expect(st.output).toMatch(/VM status: running/);
  }, 60_000);

  it('a viewer on A is refused what it is refused for a local VM, and may watch', async () => {
    for (const [m, args] of [
      ['console.ticket', { vm: 'far' }],
      ['serial.write', { vm: 'far', data: Buffer.from('reboot\n').toString('base64') }],
      ['monitor.exec', { vm: 'far', command: 'info status' }],
    ] as const) {
      await expect(viewer.call(m, args as never), m).rejects.toMatchObject({ code: 'forbidden' });
    }
    await viewer.call('serial.attach', { vm: 'far' });
    await admin.call('serial.write', { vm: 'far', data: Buffer.from('echo SEEN-$((2+3))\n').toString('base64') });
    await waitFor('the viewer to see the output', () => /SEEN-5\r?\n/.test(viewer.serialText(vmId)), 60_000, 200);
    expect((await ok(B.data, ['vm', 'list', '--json'])).includes('"running"')).toBe(true);
  }, 120_000);

  it("an evacuation's progress reaches every host's subscribers", async () => {
    const onB = await ControlClient.connect(dataLayout(B.data).controlSocket, B.data);
    const seenOnB: EvacuationProgress[] = [];
    onB.on('host.evacuation', (p) => seenOnB.push(p));
    await onB.call('events.subscribe', {});
    await admin.call('events.subscribe', {});
    const before = admin.events.length;
    try {
      // A is emptied (it has no VM), asked on A: B's subscriber follows it
      await admin.call('host.evacuate', { host: 'a' });
      await waitFor(
        'the end of the evacuation on B',
        () => seenOnB.some((p) => p.op === 'evacuate' && /in maintenance/.test(p.message)),
        30_000,
        100,
      );
      expect(seenOnB.every((p) => p.host === 'a')).toBe(true);
      // asked on B, restored on A: A's own subscriber sees each step once, B's sees them too
      await onB.call('host.restore', { host: 'a' });
      await waitFor('the restore on B', () => seenOnB.some((p) => p.op === 'restore'), 30_000, 100);
      const onA = admin.events
        .slice(before)
        .filter((e) => e.event === 'host.evacuation')
        .map((e) => e.payload as unknown as EvacuationProgress);
      const evacuateOnA = onA.filter((p) => p.op === 'evacuate').map((p) => p.message);
      expect(evacuateOnA).toEqual(seenOnB.filter((p) => p.op === 'evacuate').map((p) => p.message));
      expect(new Set(evacuateOnA).size).toBe(evacuateOnA.length);
    } finally {
      onB.close();
    }
  }, 120_000);

  it("B dying ends A's consoles of its VM with a reason", async () => {
    const t = await admin.call('console.ticket', { vm: 'far' });
    const { rfb: reader } = await openDisplay(base, t.path);
    const rfb = reader!;
    await rfb.read(12);
    const before = admin.events.length;
    B.serve!.kill('SIGKILL');
    const closed = await waitFor(
      "serial.closed on A's session",
      () => admin.events.slice(before).find((e) => e.event === 'serial.closed' && e.payload.vmId === vmId),
      60_000,
      200,
    );
    expect(closed.payload.reason).toMatch(/host "b"/);
    await waitFor('the display to close', () => rfb.closed, 60_000, 200);
    expect(rfb.closed!.reason).toMatch(/host "b"/);
    // opening it again says where the VM is and why not
    await waitFor(
      'A to see b not reporting',
      async () => {
        const err = await admin.call('serial.attach', { vm: 'far' }).then(
          () => null,
          (e: Error) => e,
        );
        return err && /not reporting|cannot be reached/.test(err.message) ? err : null;
      },
      60_000,
      1000,
    );
  }, 120_000);
});
