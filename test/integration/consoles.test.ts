// Consoles through `corral serve`: the VNC bridge and its tickets, screenshots, the
// read-only monitor and terminals, over the same WebSocket API the browser uses.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MS, FIXTURE, tempDir, waitFor } from '../helpers';
import { corral, ServeProcess } from './serve-process';
import { vncHello, WsApi } from './ws-client';

const data = tempDir();
let serve: ServeProcess;
let api: WsApi;
let a: string;
let b: string;

beforeAll(async () => {
  serve = await ServeProcess.start(data);
  api = await WsApi.connect(serve.port, serve.token);
  const boot = { memoryMiB: 192, kernel: FIXTURE.kernel, initrd: FIXTURE.initrd, append: 'console=tty0 console=ttyS0' };
  a = (await api.call('vm.create', { name: 'screen a', ...boot })).id;
  b = (await api.call('vm.create', { name: 'screen b', ...boot })).id;
  await api.call('vm.start', { vm: a });
  await api.call('vm.start', { vm: b });
});

afterAll(async () => {
  api?.close();
  for (const vm of ['screen a', 'screen b']) await corral(data, ['vm', 'kill', vm]);
  await serve?.stop();
});

describe('graphical console bridge', () => {
  it("a ticket opens the VM's VNC server once, and only for its VM", async () => {
    const t = await api.call('console.ticket', { vm: a });
    expect(t.base).toBeNull(); // serve: the page's own origin
    const first = await vncHello(serve.port, t.path);
    expect(first.hello).toMatch(/^RFB 003\.00\d\n/);
    expect(await vncHello(serve.port, t.path)).toEqual({ status: 403 }); // spent
    const forA = await api.call('console.ticket', { vm: a });
    expect(await vncHello(serve.port, `/vnc?vm=${b}&ticket=${encodeURIComponent(forA.ticket)}`)).toEqual({ status: 403 });
    expect(await vncHello(serve.port, `/vnc?vm=${a}&ticket=forged`)).toEqual({ status: 403 });
    const other = await api.call('console.ticket', { vm: b });
    expect(await vncHello(serve.port, other.path, 'http://evil.example')).toEqual({ status: 403 });
  });

  it('screenshots the guest screen as PNG (API and CLI)', async () => {
    const png = await waitFor(
      'a screen with text',
      async () => {
        const shot = Buffer.from((await api.call('vm.screenshot', { vm: a })).png, 'base64');
        return shot.length > 2000 ? shot : null; // a blank screen compresses to almost nothing
      },
      BOOT_MS,
      500,
    );
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const file = `${tempDir()}/shot, 1.png`;
    const r = await corral(data, ['vm', 'screenshot', 'screen a', file]);
    expect(r.code).toBe(0);
  });
});

describe('monitor and terminals in serve mode', () => {
  it('are off by default on a headless host', async () => {
    const info = await api.call('host.info', {});
    expect(info.features).toEqual({ hostShell: false, monitor: false });
    await expect(api.call('monitor.exec', { vm: a, command: 'info status' })).rejects.toThrow(/turned off/);
    await expect(api.call('terminal.open', { kind: 'host', cols: 80, rows: 24 })).rejects.toThrow(/turned off/);
  });

  it('the monitor, once enabled, answers read-only info commands and refuses the rest', async () => {
    await api.call('host.settings', { monitor: true });
    const r = await api.call('monitor.exec', { vm: a, command: 'info status' });
    expect(r.output).toMatch(/VM status: running/);
    for (const bad of ['quit', 'system_reset', 'info status; quit', 'migrate tcp:1.2.3.4:1', 'device_add e1000']) {
      await expect(api.call('monitor.exec', { vm: a, command: bad })).rejects.toThrow(/is not allowed/);
    }
    expect((await api.call('vm.get', { vm: a })).state).toBe('running');
  });

  it('a host terminal runs a command and shows its output; sizes are checked; others cannot use it', async () => {
    await api.call('host.settings', { hostShell: true });
    await expect(api.call('terminal.open', { kind: 'host', cols: 0, rows: 24 })).rejects.toMatchObject({ api: { field: 'cols' } });
    await expect(api.call('terminal.open', { kind: 'host', cols: 80, rows: 100000 })).rejects.toMatchObject({ api: { field: 'rows' } });
    const t = await api.call('terminal.open', { kind: 'host', cols: 80, rows: 24 });
    await api.call('terminal.write', { id: t.id, data: Buffer.from('echo corral-$((20+3))\n').toString('base64') });
    await waitFor(
      'terminal output',
      () =>
        api.events.some(
          (e) =>
            e.event === 'terminal.data' &&
            Buffer.from((e.payload as { data: string }).data, 'base64')
              .toString()
              .includes('corral-23'),
        ),
      30_000,
    );
    await expect(api.call('terminal.resize', { id: t.id, cols: -1, rows: 10 })).rejects.toMatchObject({ api: { field: 'cols' } });
    await api.call('terminal.resize', { id: t.id, cols: 120, rows: 40 });
    const other = await WsApi.connect(serve.port, serve.token);
    await expect(other.call('terminal.write', { id: t.id, data: '' })).rejects.toThrow(/no terminal/);
    other.close();
    await api.call('terminal.close', { id: t.id });
    await expect(api.call('terminal.open', { kind: 'ssh', vm: a, cols: 80, rows: 24 })).rejects.toThrow(/no port forward to guest port 22/);
  });

  it('a client that stops reading pauses a flooding terminal instead of growing the host', { timeout: 60_000 }, async () => {
    const slow = await WsApi.connect(serve.port, serve.token);
    await slow.call('host.settings', { hostShell: true });
    const t = await slow.call('terminal.open', { kind: 'host', cols: 80, rows: 24 });
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${serve.child.pid}/status`, 'utf8'))![1]) * 1024;
    const before = rss();
    await slow.call('terminal.write', { id: t.id, data: Buffer.from('yes corral-flood-line | head -c 400000000\n').toString('base64') });
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause(); // stop reading
    await new Promise((r) => setTimeout(r, 8000));
    // about 20 MB with backpressure; several hundred MB without it
    expect(rss() - before).toBeLessThan(100 * 1024 * 1024);
    slow.close();
  });
});
