// Benchmarks of the consoles, measured in the page: a real `corral serve` (TCG), its UI in
// Chromium, and for the floors the same guest in a bare QEMU with the same argv, reached
// without Corral (its serial socket from Node, its own websocket VNC from the same noVNC).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Browser, type BrowserContext, type CDPSession, type Page } from 'playwright-core';
import { dataLayout, vmFiles } from '../../electron/core/paths';
import { buildArgv } from '../../electron/core/qemu/argv';
import { findQemu } from '../../electron/core/qemu/probe';
import { FIXTURE, SERIAL_TAP_QEMU, tapFlood, tempDir, waitFor } from '../helpers';
import { launchChromium } from '../browser';
import { corral, ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';
import { median, ms, type Row } from './lib';

const VM = 'bench consoles';
/** Bytes the guest prints for the serial throughput (QEMU's serial port is slow under TCG). */
const SERIAL_BYTES = Number(process.env.BENCH_SERIAL_BYTES ?? 1_000_000);
const PTY_BYTES = Number(process.env.BENCH_PTY_BYTES ?? 30_000_000);
/** Bytes the serial tap floods the host with (the issue's 50 MB flood). */
const PIPE_BYTES = Number(process.env.BENCH_PIPE_BYTES ?? 50_000_000);
const FPS_SECONDS = Number(process.env.BENCH_FPS_SECONDS ?? 10);
const KEYS = 60;
/** Seconds of an idle page's round trips, the floor for those during a flood. */
const IDLE_SECONDS = 5;
/** Between one key's echo and the next key: fast typing (about 8 keys a second). */
const KEY_GAP_MS = 100;
/** A guest command that prints `bytes` bytes in 80-column lines, then a marker. */
const flood = (bytes: number) =>
  `yes 0123456789abcdefghij0123456789abcdefghij0123456789abcdefghij012345678 | head -c ${bytes}; echo; echo TPUT-$((1+1))-END`;
/** Keeps the guest's VGA text screen changing. */
const SCREEN_LOOP = '(while :; do echo $RANDOM $RANDOM $RANDOM $RANDOM; done > /dev/tty1) &';

const MB = 1e6;
const mbps = (bytes: number, msecs: number) => bytes / MB / (msecs / 1000);

async function heapMB(cdp: CDPSession): Promise<number> {
  await cdp.send('HeapProfiler.collectGarbage');
  const { metrics } = await cdp.send('Performance.getMetrics');
  return (metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0) / 1024 / 1024;
}

// ---- in the page ------------------------------------------------------------------------

/** Times each keystroke into the serial xterm until its echo is parsed into xterm's buffer. */
async function keystrokeRoundTrips(page: Page): Promise<number[]> {
  await page.evaluate(() => {
    type Probe = { samples: number[]; t0: number; at: string };
    const el = document.querySelector('[data-testid="serial-console"]') as HTMLElement & { xterm: import('@xterm/xterm').Terminal };
    const t = el.xterm;
    const probe: Probe = { samples: [], t0: 0, at: '' };
    (window as unknown as { __keys: Probe }).__keys = probe;
    // (no named functions in here: tsx would wrap them in a helper the page does not have)
    el.addEventListener(
      'keydown',
      () => {
        probe.t0 = performance.now();
        probe.at = `${t.buffer.active.cursorX},${t.buffer.active.cursorY + t.buffer.active.baseY}`;
      },
      true,
    );
    t.onWriteParsed(() => {
      if (probe.t0 && `${t.buffer.active.cursorX},${t.buffer.active.cursorY + t.buffer.active.baseY}` !== probe.at) {
        probe.samples.push(performance.now() - probe.t0);
        probe.t0 = 0;
      }
    });
  });
  await page.getByTestId('serial-console').click();
  const count = () => page.evaluate(() => (window as unknown as { __keys: { samples: number[] } }).__keys.samples.length);
  for (let i = 0; i < KEYS; i++) {
    // x, x, … then as many Backspaces: every key moves the cursor when echoed
    await page.keyboard.press(i % 20 < 10 ? 'x' : 'Backspace');
    await waitFor('the echo', async () => (await count()) > i, 5000, 1);
    await sleep(KEY_GAP_MS);
  }
  return page.evaluate(() => (window as unknown as { __keys: { samples: number[] } }).__keys.samples);
}

/** Installs a watcher that notes when the marker line is parsed into this console's buffer. */
async function markerWatch(page: Page, testid: string, marker: string): Promise<void> {
  await page.evaluate(
    ([id, m]) => {
      const els = [...document.querySelectorAll(`[data-testid="${id}"]`)] as Array<
        HTMLElement & { xterm: import('@xterm/xterm').Terminal }
      >;
      const t = (els.find((e) => e.offsetParent !== null) ?? els[0]).xterm;
      const w = window as unknown as { __marker: number };
      w.__marker = 0;
      const sub = t.onWriteParsed(() => {
        const b = t.buffer.active;
        for (let i = Math.max(0, b.length - 4); i < b.length; i++) {
          if (b.getLine(i)?.translateToString(true).includes(m)) {
            w.__marker = performance.now();
            sub.dispose();
            return;
          }
        }
      });
    },
    [testid, marker] as const,
  );
}

/**
 * Polls `fn` in the page every 100 ms until it returns a truthy value; with the time of each
 * poll's round trip (a page busy parsing output answers late).
 */
async function pollPage<T>(page: Page, what: string, fn: () => T, timeoutMs: number): Promise<{ value: NonNullable<T>; rtt: number[] }> {
  const rtt: number[] = [];
  const value = await waitFor(
    what,
    async () => {
      const t0 = performance.now();
      const v = await page.evaluate(fn);
      rtt.push(performance.now() - t0);
      return v;
    },
    timeoutMs,
    100,
  );
  return { value, rtt };
}

/** Runs a command in an xterm console and times it until its marker is in the page; with the page's round trips meanwhile. */
async function timeFlood(page: Page, testid: string, command: string, timeoutMs: number): Promise<{ ms: number; rtt: number[] }> {
  await markerWatch(page, testid, 'TPUT-2-END');
  await page.keyboard.type(command);
  const t0 = await page.evaluate(() => performance.now());
  await page.keyboard.press('Enter');
  const { value: t1, rtt } = await pollPage(
    page,
    'the flood to end',
    () => (window as unknown as { __marker: number }).__marker,
    timeoutMs,
  );
  return { ms: t1 - t0, rtt };
}

/** The page's round trips, every 100 ms for `seconds`, while it has nothing to do: the floor for those during a flood. */
async function idleRoundTrips(page: Page, seconds: number): Promise<number[]> {
  const rtt: number[] = [];
  for (const end = performance.now() + seconds * 1000; performance.now() < end;) {
    const t0 = performance.now();
    await page.evaluate(() => 0);
    rtt.push(performance.now() - t0);
    await sleep(100);
  }
  return rtt;
}

async function displayFrames(page: Page): Promise<number> {
  return page.evaluate(
    () =>
      (document.querySelector('[data-testid="display-screen"]') as HTMLElement & { displayStats: { frames: number } }).displayStats.frames,
  );
}

/** A page of `url` showing the serial console of a VM (the bench VM unless named), attached. */
async function openSerial(browser: Browser, url: string, vm = VM): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  await page.goto(url);
  await page.getByTestId('vm-item').filter({ hasText: vm }).click();
  await page.getByTestId('tab-console').click();
  await page.getByTestId('console-tab-serial').click();
  await waitFor(
    'the serial console',
    async () => (await page.getByTestId('serial-console').getAttribute('data-attached')) === 'true',
    30_000,
    50,
  );
  await sleep(1000);
  return { context, page };
}

/** A fresh prompt line before the next measurement. */
async function freshPrompt(api: WsApi, vmId: string): Promise<void> {
  await api.call('serial.write', { vm: vmId, data: Buffer.from('\n').toString('base64') });
  await sleep(500);
}

// ---- the floors: a bare QEMU ------------------------------------------------------------

class BareQemu {
  private constructor(
    readonly child: ChildProcess,
    readonly serial: net.Socket,
    readonly wsPort: number,
  ) {}
  out = '';

  static async start(config: Parameters<typeof buildArgv>[0]['config'], dir: string): Promise<BareQemu> {
    const files = vmFiles(dataLayout(dir), 'bare');
    fs.mkdirSync(files.runDir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(files.dir, { recursive: true });
    const wsPort = await freePort();
    const argv = buildArgv({ id: 'bare', name: 'bare', config, files }, { accel: 'tcg' })
      // run at once (no host to connect QMP first), and let QEMU serve websocket VNC itself
      .filter((a) => a !== '-S');
    const vnc = argv.indexOf('-vnc');
    argv[vnc + 1] += `,websocket=127.0.0.1:${wsPort}`;
    const child = spawn(findQemu(), argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    const serial = await waitFor(
      'the bare QEMU serial socket',
      () =>
        new Promise<net.Socket | null>((resolve) => {
          const s = net.createConnection(files.serialSocket);
          s.once('connect', () => resolve(s));
          s.once('error', () => resolve(null));
        }),
      20_000,
      50,
    );
    const q = new BareQemu(child, serial, wsPort);
    serial.on('data', (d: Buffer) => {
      q.out += d.toString('latin1');
      if (q.out.length > 1_000_000) q.out = q.out.slice(-100_000);
    });
    await waitFor('the bare guest prompt', () => q.out.includes(FIXTURE.prompt), 90_000, 50);
    return q;
  }

  /** Bytes per second the guest's serial port delivers to a plain socket reader. */
  async serialRate(bytes: number): Promise<number> {
    await sleep(500);
    let seen = '';
    const count = (d: Buffer) => {
      seen = (seen + d.toString('latin1')).slice(-200);
    };
    this.serial.on('data', count);
    const t0 = performance.now();
    this.serial.write(`${flood(bytes)}\n`);
    await waitFor('the bare flood to end', () => seen.includes('TPUT-2-END'), 600_000, 5);
    const t = performance.now() - t0;
    this.serial.off('data', count);
    return mbps(bytes, t);
  }

  async stop(): Promise<void> {
    this.serial.destroy();
    if (this.child.exitCode === null) {
      this.child.kill('SIGKILL');
      await new Promise((r) => this.child.once('exit', r));
    }
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** noVNC's own files and a page that connects it to a websocket URL, counting frames. */
function harnessServer(width: number, height: number): Promise<http.Server> {
  // core/ imports ../vendor/ (pako): serve the package's two folders as they are
  const root = path.join(__dirname, '..', '..', 'node_modules', '@novnc', 'novnc');
  const page = `<!doctype html><meta charset="utf-8"><style>html,body{margin:0;background:#000}#s{position:absolute;left:0;top:0;width:${width}px;height:${height}px}</style><div id="s"></div>
<script type="module">
import RFB from './core/rfb.js';
const rfb = new RFB(document.getElementById('s'), new URLSearchParams(location.search).get('url'), { wsProtocols: ['binary'] });
rfb.scaleViewport = true;
window.__frames = 0;
const d = rfb._display, flip = d.flip.bind(d);
d.flip = (...a) => { window.__frames++; return flip(...a); };
rfb.addEventListener('connect', () => (window.__connected = true));
</script>`;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/harness.html') return res.writeHead(200, { 'content-type': 'text/html' }).end(page);
    const file = path.normalize(path.join(root, url.pathname));
    const inside = [path.join(root, 'core') + path.sep, path.join(root, 'vendor') + path.sep].some((d) => file.startsWith(d));
    if (!inside || !fs.existsSync(file)) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/javascript' }).end(fs.readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/**
 * The floor of the serial path: the same tap (test/fixtures/serial-tap.mjs) flooding a plain
 * socket reader instead of Corral, so no host, WebSocket or page. Megabytes per second until
 * the last line is read, for `bytes` offered at `rate` bytes/s (0: flat out).
 */
async function tapToReader(offers: Array<{ bytes: number; rate: number }>): Promise<number[]> {
  const dir = tempDir('corral-bench-tap-');
  const sock = path.join(dir, 'serial.sock');
  // the tap relays to QEMU's socket: here one that takes what it is sent and says nothing
  let qemuPeer: net.Socket | null = null;
  const qemu = net.createServer((c) => (qemuPeer = c));
  await new Promise<void>((r) => qemu.listen(`${sock}.qemu`, r));
  const tap = spawn(process.execPath, [path.join(__dirname, '..', 'fixtures', 'serial-tap.mjs'), sock], { stdio: 'ignore' });
  let reader: net.Socket | null = null;
  try {
    reader = await waitFor(
      'the tap to listen',
      () =>
        new Promise<net.Socket | null>((resolve) => {
          const s = net.createConnection(sock);
          s.once('connect', () => resolve(s));
          s.once('error', () => resolve(null));
        }),
      20_000,
      20,
    );
    await waitFor('the tap to reach the fake QEMU', () => qemuPeer, 20_000, 10);
    let tail = '';
    reader.on('data', (d: Buffer) => (tail = (tail + d.toString('latin1')).slice(-64)));
    const rates: number[] = [];
    for (const [i, { bytes, rate }] of offers.entries()) {
      const t0 = performance.now();
      await tapFlood(sock, bytes, rate, `floor${i}`);
      await waitFor('the last line', () => tail.includes(`TPUT-floor${i}-END`), 300_000, 1);
      rates.push(mbps(bytes, performance.now() - t0));
    }
    return rates;
  } finally {
    reader?.destroy();
    (qemuPeer as net.Socket | null)?.destroy();
    qemu.close();
    if (tap.exitCode === null) tap.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The serial path's own capacity: host → WebSocket → page, fed at the serial socket by the
 * tap of test/fixtures/serial-tap-qemu.sh instead of the guest's UART (far slower under TCG).
 * A second `corral serve` runs the VM with the tap as its QEMU; all past the socket is real.
 * Also the page's round trips during the flat-out flood.
 */
export async function serialPipeline(browser: Browser): Promise<{ row: Row; floodRtt: number[] }> {
  const dataDir = tempDir('corral-bench-pipe-');
  const serve = await ServeProcess.start(dataDir, '127.0.0.1:0', { CORRAL_QEMU: SERIAL_TAP_QEMU });
  const name = 'bench pipeline';
  let api: WsApi | null = null;
  try {
    api = await WsApi.connect(serve.port, serve.token);
    const vm = await api.call('vm.create', {
      name,
      memoryMiB: 192,
      kernel: FIXTURE.kernel,
      initrd: FIXTURE.initrd,
      append: 'console=ttyS0 quiet',
    });
    await api.call('vm.start', { vm: vm.id });
    const log = async () => Buffer.from((await api!.call('serial.log', { vm: vm.id })).data, 'base64').toString('latin1');
    await waitFor('the guest prompt', async () => (await log()).includes(FIXTURE.prompt), 120_000, 250);
    const { context, page } = await openSerial(browser, serve.url, name);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    const serial = vmFiles(dataLayout(dataDir), vm.id).serialSocket;
    const skippedSoFar = async () => Number(await page.getByTestId('serial-console').getAttribute('data-skipped'));
    /** Offers `bytes` at `rate` bytes/s (0: flat out); the time until the last line is in the page. */
    const offer = async (bytes: number, rate: number, tag: string) => {
      const skipped0 = await skippedSoFar();
      await markerWatch(page, 'serial-console', `TPUT-${tag}-END`);
      const t0 = await page.evaluate(() => performance.now());
      const sending = tapFlood(serial, bytes, rate, tag);
      const { value: t1, rtt } = await pollPage(
        page,
        'the flood to reach the page',
        () => (window as unknown as { __marker: number }).__marker,
        300_000,
      );
      await sending;
      await sleep(500);
      return { rate: mbps(bytes, t1 - t0), skipped: (await skippedSoFar()) - skipped0, rtt };
    };
    // the floor first, on the same machine a moment before
    const [floor5, floorFlat] = await tapToReader([
      { bytes: PIPE_BYTES, rate: 5 * MB },
      { bytes: PIPE_BYTES, rate: 0 },
    ]);
    const heapBefore = await heapMB(cdp);
    const at5 = await offer(PIPE_BYTES, 5 * MB, 'at5');
    const heapAfter = await heapMB(cdp);
    // how far it goes without skipping anything
    const shows5 = at5.rate >= 0.95 * 5 && !at5.skipped;
    let sustained = shows5 ? 5 : 0;
    for (const r of shows5 ? [10, 20, 40] : []) {
      const run = await offer(Math.min(PIPE_BYTES, r * 2 * MB), r * MB, `at${r}`);
      if (run.skipped || run.rate < 0.95 * r) break;
      sustained = r;
    }
    const flat = await offer(PIPE_BYTES, 0, 'flat');
    await context.close();
    const mb = (b: number) => (b ? `${(b / MB).toFixed(1)} MB` : 'nothing');
    return {
      row: {
        name: `serial throughput to the page: host → WebSocket → page, fed at the serial socket (${(PIPE_BYTES / MB).toFixed(0)} MB offered at 5 MB/s)`,
        value: `${at5.rate.toFixed(2)} MB/s, skipped ${mb(at5.skipped)}, JS heap ${heapBefore.toFixed(1)} → ${heapAfter.toFixed(1)} MB; shows all of ${sustained ? `${sustained} MB/s` : 'no rate tried (5 MB/s)'}; flat out: ${flat.rate.toFixed(1)} MB/s with ${mb(flat.skipped)} skipped`,
        floor: `${floor5.toFixed(2)} MB/s offered at 5 MB/s, ${floorFlat.toFixed(1)} MB/s flat out (the same tap read by a plain socket reader)`,
        target: '≥ 5 MB/s with nothing skipped, heap flat (< +20 MB)',
        ok: shows5 && heapAfter - heapBefore < 20,
      },
      floodRtt: flat.rtt,
    };
  } finally {
    api?.close();
    await corral(dataDir, ['vm', 'kill', name]);
    await serve.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---- the rows -----------------------------------------------------------------------------

export async function consoleRows(): Promise<Row[]> {
  const dataDir = tempDir('corral-bench-consoles-');
  const bareDir = tempDir('corral-bench-bare-');
  let serve: ServeProcess | null = null;
  let api: WsApi | null = null;
  let browser: Browser | null = null;
  let bare: BareQemu | null = null;
  let harness: http.Server | null = null;
  try {
    serve = await ServeProcess.start(dataDir);
    api = await WsApi.connect(serve.port, serve.token);
    await api.call('host.settings', { hostShell: true });
    const vm = await api.call('vm.create', {
      name: VM,
      memoryMiB: 192,
      kernel: FIXTURE.kernel,
      initrd: FIXTURE.initrd,
      append: 'console=tty0 console=ttyS0',
    });
    await api.call('vm.start', { vm: vm.id });
    const log = async () => Buffer.from((await api!.call('serial.log', { vm: vm.id })).data, 'base64').toString('latin1');
    await waitFor('the guest prompt', async () => (await log()).includes(FIXTURE.prompt), 120_000, 250);

    // keystrokes with the desktop app's Chromium settings first, in a browser of its own
    const desktop = await launchChromium({ as: 'desktop' });
    let desktopKeys: number[];
    try {
      desktopKeys = await keystrokeRoundTrips((await openSerial(desktop, serve.url)).page);
    } finally {
      await desktop.close();
    }
    await freshPrompt(api, vm.id);

    browser = await launchChromium();
    const { context, page } = await openSerial(browser, serve.url);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');

    // the page's round trips while idle: the floor for those during the floods below
    const idleRtt = await idleRoundTrips(page, IDLE_SECONDS);

    // keystroke round trip, and a Node client on the same API beside it
    const keys = await keystrokeRoundTrips(page);
    const nodeKeys: number[] = [];
    await api.call('serial.attach', { vm: vm.id });
    for (let i = 0; i < 30; i++) {
      const before = api.events.length;
      const t0 = performance.now();
      await api.call('serial.write', { vm: vm.id, data: Buffer.from(i % 20 < 10 ? 'y' : '\x7f').toString('base64') });
      await waitFor('the echo', () => api!.events.slice(before).some((e) => e.event === 'serial.data'), 5000, 0);
      nodeKeys.push(performance.now() - t0);
      await sleep(KEY_GAP_MS);
    }
    await api.call('serial.detach', { vm: vm.id });
    api.events.length = 0;
    await page.keyboard.press('Enter');
    await sleep(500);

    // serial throughput, with the JS heap before and after
    const heapBefore = await heapMB(cdp);
    const serialFlood = await timeFlood(page, 'serial-console', flood(SERIAL_BYTES), 300_000);
    const heapAfter = await heapMB(cdp);
    const serialRate = mbps(SERIAL_BYTES, serialFlood.ms);

    // the same flow control with a fast source: a pty on the host
    await page.getByTestId('console-tab-terminal').first().click();
    await page.getByTestId('terminal-open-host').click();
    await page.locator('[data-testid="terminal-console"][data-status="open"]').waitFor({ timeout: 15_000 });
    await page.getByTestId('terminal-screen').click();
    await sleep(500);
    const ptyHeapBefore = await heapMB(cdp);
    const ptyFlood = await timeFlood(
      page,
      'terminal-screen',
      `head -c ${PTY_BYTES} /dev/zero | tr '\\0' x | fold -w 119; echo TPUT-$((1+1))-END`,
      300_000,
    );
    const ptyHeapAfter = await heapMB(cdp);
    const ptyLines = Math.ceil(PTY_BYTES / 119);
    const ptyRate = mbps(PTY_BYTES + ptyLines, ptyFlood.ms);
    const skipped = await page.evaluate(() => {
      const chip = [...document.querySelectorAll('[data-testid="terminal-console"] [role="status"]')]
        .map((e) => e.textContent ?? '')
        .join(' ');
      return /([\d.]+ [KM]B) of output skipped/.exec(chip)?.[1] ?? 'nothing';
    });

    // frames per second of the display on a screen that keeps changing
    await api.call('serial.write', { vm: vm.id, data: Buffer.from(`${SCREEN_LOOP}\n`).toString('base64') });
    await page.getByTestId('console-tab-display').click();
    await waitFor(
      'the display',
      async () => (await page.getByTestId('display-console').getAttribute('data-state')) === 'connected',
      30_000,
      50,
    );
    const box = (await page.getByTestId('display-screen').boundingBox())!;
    await sleep(2000);
    const f0 = await displayFrames(page);
    await sleep(FPS_SECONDS * 1000);
    const fps = ((await displayFrames(page)) - f0) / FPS_SECONDS;

    // the floors: the same guest in a bare QEMU (Corral's VM stopped, so both had the CPU)
    const config = (await api.call('vm.get', { vm: vm.id })).config;
    await api.call('vm.kill', { vm: vm.id });
    bare = await BareQemu.start(config, bareDir);
    const floorSerial = await bare.serialRate(SERIAL_BYTES);
    bare.serial.write(`${SCREEN_LOOP}\n`);
    harness = await harnessServer(Math.round(box.width), Math.round(box.height));
    const hp = await context.newPage();
    await hp.goto(
      `http://127.0.0.1:${(harness.address() as net.AddressInfo).port}/harness.html?url=${encodeURIComponent(`ws://127.0.0.1:${bare.wsPort}`)}`,
    );
    await hp.waitForFunction(() => (window as unknown as { __connected?: boolean }).__connected === true, undefined, { timeout: 30_000 });
    await sleep(2000);
    const frames = () => hp.evaluate(() => (window as unknown as { __frames: number }).__frames);
    const g0 = await frames();
    await sleep(FPS_SECONDS * 1000);
    const floorFps = ((await frames()) - g0) / FPS_SECONDS;
    await bare.stop();
    bare = null;

    // the serial path's capacity, with a source faster than any UART under TCG
    const pipeline = await serialPipeline(browser);
    const worst = (xs: number[]) => Math.max(...xs);
    const floods = [worst(serialFlood.rtt), worst(ptyFlood.rtt), worst(pipeline.floodRtt)];

    const k = median(keys);
    const kd = median(desktopKeys);
    const kn = median(nodeKeys);
    const flat = heapAfter - heapBefore < 20;
    return [
      {
        name: `serial keystroke round trip over WebSocket (key in → echo in the page's terminal), median of ${keys.length}, ${KEY_GAP_MS} ms apart`,
        value: `${ms(k)} in Chromium; ${ms(kd)} with the desktop app's Chromium settings`,
        floor: `${ms(kn)} (a Node client on the same API)`,
        target: '≤ 15 ms',
        ok: k <= 15,
      },
      pipeline.row,
      {
        name: 'page round trip while a console floods (worst): serial from the UART, terminal (pty), serial tap flat out',
        value: floods.map(ms).join(', '),
        floor: `${ms(worst(idleRtt))} (the same page idle, ${IDLE_SECONDS} s)`,
        target: '< 1000 ms (the page never freezes)',
        ok: floods.every((x) => x < 1000),
      },
      {
        name: `serial throughput to the page from the guest's UART (${(SERIAL_BYTES / MB).toFixed(1)} MB)`,
        value: `${serialRate.toFixed(2)} MB/s, JS heap ${heapBefore.toFixed(1)} → ${heapAfter.toFixed(1)} MB`,
        floor: `${floorSerial.toFixed(2)} MB/s (bare QEMU, its serial socket read directly)`,
        // the emulated UART is the limit here (QEMU writes it a byte at a time); the 5 MB/s
        // target is the row above. Heap must stay flat all the same.
        target: 'heap flat (< +20 MB); the UART is the limit',
        ok: flat ? null : false,
      },
      {
        name: `terminal (pty) throughput to the page, the same flow control (${(PTY_BYTES / MB).toFixed(0)} MB)`,
        value: `${ptyRate.toFixed(1)} MB/s, skipped ${skipped}, JS heap ${ptyHeapBefore.toFixed(1)} → ${ptyHeapAfter.toFixed(1)} MB`,
        floor: '-',
        target: '≥ 5 MB/s, heap flat (< +20 MB)',
        ok: ptyRate >= 5 && ptyHeapAfter - ptyHeapBefore < 20,
      },
      {
        name: `graphical console frames per second on a continuously changing guest screen (${FPS_SECONDS} s)`,
        value: `${fps.toFixed(1)} fps`,
        floor: `${floorFps.toFixed(1)} fps (the same noVNC straight to QEMU's websocket VNC)`,
        target: `≥ 0.8 × floor = ${(0.8 * floorFps).toFixed(1)} fps`,
        ok: fps >= 0.8 * floorFps,
      },
    ];
  } finally {
    await bare?.stop();
    harness?.close();
    await browser?.close();
    api?.close();
    if (serve) {
      await corral(dataDir, ['vm', 'kill', VM]);
      await serve.stop();
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(bareDir, { recursive: true, force: true });
  }
}
