// The consoles end to end: a real `corral serve` (real QEMU, TCG) and its UI in Chromium. The
// guest fixture runs a root shell on ttyS0 and on tty1 (the VGA screen), so what is typed into
// the graphical console can be checked on the serial console, and the other way round.
// Needs `npm run build` (host and UI) and the guest fixture (built by the global setup).
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MS, FIXTURE, tempDir } from '../helpers';
import { launchChromium } from '../browser';
import { corral, ServeProcess } from '../integration/serve-process';
import { vncHello, WsApi } from '../integration/ws-client';
import { heapMB, recordWrites, takeWrites, termTail, termText, watchPage } from './page-helpers';

const ROOT = path.join(__dirname, '..', '..');
const UI_INDEX = path.join(ROOT, 'out', 'renderer', 'index.html');
const VM = 'console guest';
const OTHER = 'other guest';

interface Screen {
  width: number;
  height: number;
  /** Pixels clearly brighter than the background: text. */
  lit: number;
  /** A fingerprint of the whole picture. */
  hash: number;
}

/** Samples every pixel of the noVNC canvas. */
function sampleScreen(page: Page): Promise<Screen | null> {
  return page.evaluate(() => {
    const c = document.querySelector('[data-testid="display-screen"] canvas') as HTMLCanvasElement | null;
    if (!c || !c.width || !c.height) return null;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let lit = 0;
    let hash = 2166136261;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] + d[i + 1] + d[i + 2] > 240) lit++;
      hash = Math.imul(hash ^ (d[i] ^ (d[i + 1] << 8) ^ (d[i + 2] << 16)), 16777619);
    }
    return { width: c.width, height: c.height, lit, hash };
  });
}

describe('consoles in the UI served by `corral serve`', () => {
  let dataDir: string;
  let serve: ServeProcess;
  let api: WsApi;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let vmId: string;
  let otherId: string;
  const problems: string[] = [];

  beforeAll(async () => {
    if (!fs.existsSync(UI_INDEX)) throw new Error(`the UI is not built (${UI_INDEX} is missing): run \`npm run build\` first`);
    if (!fs.existsSync(FIXTURE.kernel)) throw new Error('the guest fixture is missing: run `bash test/fixtures/build-guest.sh`');
    dataDir = tempDir('corral-consoles-');
    serve = await ServeProcess.start(dataDir);
    api = await WsApi.connect(serve.port, serve.token);
    // console=tty0 as well: the kernel and the shell also write to the VGA screen
    const boot = { memoryMiB: 192, kernel: FIXTURE.kernel, initrd: FIXTURE.initrd, append: 'console=tty0 console=ttyS0' };
    vmId = (await api.call('vm.create', { name: VM, ...boot })).id;
    otherId = (await api.call('vm.create', { name: OTHER, ...boot })).id;
    // what corral serve keeps off by default
    await api.call('host.settings', { hostShell: true, monitor: true });
    await api.call('vm.start', { vm: vmId });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console error: ${msg.text()} (during "${expect.getState().currentTestName ?? ''}")`);
    });
  }, 90_000);

  afterAll(async () => {
    api?.close();
    if (dataDir) for (const vm of [VM, OTHER]) await corral(dataDir, ['vm', 'kill', vm]);
    await browser?.close();
    await serve?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('a console ticket opens the display once, and only for its own VM', async () => {
    const t = await api.call('console.ticket', { vm: vmId });
    expect(t.path).toContain(`vm=${vmId}`);
    expect((await vncHello(serve.port, t.path)).hello).toMatch(/^RFB 003\.00\d\n/);
    // spent
    expect(await vncHello(serve.port, t.path)).toEqual({ status: 403 });
    // a fresh ticket of this VM, presented for another one
    const fresh = await api.call('console.ticket', { vm: vmId });
    expect(await vncHello(serve.port, `/vnc?vm=${otherId}&ticket=${encodeURIComponent(fresh.ticket)}`)).toEqual({ status: 403 });
    // and it was spent by that attempt too
    expect(await vncHello(serve.port, fresh.path)).toEqual({ status: 403 });
    // a VM that is not running has no console to hand out
    await expect(api.call('console.ticket', { vm: otherId })).rejects.toThrow(/not running/);
  });

  it('the serial console shows what the guest printed before it was opened', { timeout: BOOT_MS + 60_000 }, async () => {
    // the boot banner is long printed (and kept in the log) when the console first opens
    await expect
      .poll(async () => Buffer.from((await api.call('serial.log', { vm: vmId })).data, 'base64').toString(), {
        timeout: BOOT_MS,
        interval: 250,
      })
      .toContain(FIXTURE.banner);
    await sleep(1000);
    await page.goto(serve.url);
    await page.getByTestId('vm-item').filter({ hasText: VM }).click();
    await page.getByTestId('tab-console').click();
    await page.getByTestId('serial-console').waitFor();
    await expect.poll(() => termText(page, 'serial-console'), { timeout: 30_000, interval: 200 }).toContain(FIXTURE.banner);
    await expect.poll(() => page.getByTestId('serial-console').getAttribute('data-attached'), { timeout: 30_000 }).toBe('true');
    // and it is live: a command typed now runs
    await page.getByTestId('serial-console').click();
    await page.keyboard.type('echo serial-$((6*7))');
    await page.keyboard.press('Enter');
    await expect.poll(() => termText(page, 'serial-console'), { timeout: 30_000, interval: 200 }).toMatch(/^serial-42\s*$/m);
  });

  it('the graphical console shows the guest screen, and typing changes it', async () => {
    await page.getByTestId('console-tab-display').click();
    await expect.poll(() => page.getByTestId('display-console').getAttribute('data-state'), { timeout: 30_000 }).toBe('connected');
    // the text console: 720×400, with the boot messages and the tty1 prompt on it
    await expect.poll(async () => (await sampleScreen(page))?.lit ?? 0, { timeout: 30_000, interval: 200 }).toBeGreaterThan(2000);
    const before = (await sampleScreen(page))!;
    expect(before).toMatchObject({ width: 720, height: 400 });
    await page.locator('[data-testid="display-screen"] canvas').click();
    await page.keyboard.type('echo hello');
    await page.keyboard.press('Enter');
    await expect.poll(async () => (await sampleScreen(page))?.hash, { timeout: 30_000, interval: 200 }).not.toBe(before.hash);
  }, 120_000);

  it('"Type text" types into the guest, shifted characters included', async () => {
    await page.getByTestId('display-type').click();
    await page.getByTestId('type-text').fill('echo typed-$((6*7)) > /dev/ttyS0\n');
    await page.getByTestId('type-submit').click();
    await page.getByTestId('type-dialog').waitFor({ state: 'detached', timeout: 30_000 });
    await expect.poll(() => termText(page, 'serial-console'), { timeout: 30_000, interval: 200 }).toContain('typed-42');
  }, 120_000);

  it('Ctrl+Alt+Del from the Send key menu reaches the guest', async () => {
    await page.getByTestId('display-sendkey').click();
    await page.getByTestId('sendkey-ctrl-alt-del').click();
    await expect.poll(() => termText(page, 'serial-console'), { timeout: 30_000, interval: 200 }).toContain('CORRAL-GUEST: ctrl-alt-del');
  }, 120_000);

  it('shows serial and display side by side', async () => {
    await page.getByTestId('console-split').click();
    expect(await page.getByTestId('console-area').getAttribute('data-split')).toBe('true');
    await page.getByTestId('serial-console').waitFor({ state: 'visible' });
    await page.getByTestId('display-screen').waitFor({ state: 'visible' });
    const a = (await page.getByTestId('serial-console').boundingBox())!;
    const b = (await page.getByTestId('display-screen').boundingBox())!;
    expect(Math.abs(a.y - b.y)).toBeLessThan(5);
    // next to each other, not overlapping
    expect(a.x + a.width <= b.x || b.x + b.width <= a.x).toBe(true);
    await page.getByTestId('console-split').click();
    expect(await page.getByTestId('console-area').getAttribute('data-split')).toBe('false');
  });

  it('a host terminal runs a command and shows its output, then its exit', async () => {
    await page.getByTestId('console-tab-terminal').first().click();
    await page.getByTestId('terminal-open-host').click();
    await page.locator('[data-testid="terminal-console"][data-status="open"]').waitFor({ timeout: 30_000 });
    await page.getByTestId('terminal-screen').click();
    await page.keyboard.type('echo pty-$((20+3))');
    await page.keyboard.press('Enter');
    await expect.poll(() => termText(page, 'terminal-screen'), { timeout: 30_000, interval: 200 }).toMatch(/^pty-23\s*$/m);
    await page.keyboard.type('exit 7');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('terminal-ended').textContent(), { timeout: 30_000 }).toContain('exited with code 7');
    // and it comes back
    await page.getByTestId('terminal-reopen-inline').click();
    await page.locator('[data-testid="terminal-console"][data-status="open"]').waitFor({ timeout: 30_000 });
  }, 120_000);

  it('the monitor answers info commands and shows why others are refused', async () => {
    await page.getByTestId('console-tab-monitor').click();
    const input = page.getByTestId('monitor-input');
    await input.fill('info status');
    await input.press('Enter');
    await expect.poll(() => page.getByTestId('monitor-log').textContent(), { timeout: 30_000 }).toContain('VM status: running');
    await input.fill('system_reset');
    await input.press('Enter');
    await expect
      .poll(async () => (await page.getByTestId('monitor-entry').last().textContent()) ?? '', { timeout: 30_000 })
      .toMatch(/is not allowed/);
    // the history: ↑ brings back the previous commands
    await input.press('ArrowUp');
    expect(await input.inputValue()).toBe('system_reset');
    await input.press('ArrowUp');
    expect(await input.inputValue()).toBe('info status');
    expect((await api.call('vm.get', { vm: vmId })).state).toBe('running');
  }, 120_000);

  it('a 50 MB flood leaves the page answering and its memory bounded', async () => {
    // QEMU's serial port moves about 0.1 MB/s under TCG (a write per byte), so 50 MB go
    // through the terminal, which shares the serial console's flow control (lib/termflow).
    // How quickly the page answers meanwhile is a benchmark (npm run bench), not a test.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.getByTestId('console-tab-terminal').first().click();
    await page.locator('[data-testid="terminal-console"][data-status="open"]').waitFor();
    await page.getByTestId('terminal-screen').click();
    const heapBefore = await heapMB(cdp);
    await recordWrites(page, 'terminal-screen', false);
    await page.keyboard.type('head -c 50000000 /dev/urandom | base64 -w 120; echo FLOOD-$((1+1))-DONE');
    await page.keyboard.press('Enter');
    let clicked = false;
    const seen = await watchPage(
      page,
      cdp,
      async () => {
        const tail = await termTail(page, 'terminal-screen', 5);
        if (!clicked && /^[A-Za-z0-9+/]{120}$/m.test(tail)) {
          // once the flood shows, the other tabs still answer a click
          clicked = true;
          await page.getByTestId('console-tab-serial').click();
          await page.getByTestId('serial-console').waitFor({ state: 'visible' });
          await page.getByTestId('console-tab-terminal').first().click();
          await page.getByTestId('terminal-screen').first().waitFor({ state: 'visible' });
        }
        return clicked && /^FLOOD-2-DONE\s*$/m.test(tail);
      },
      120_000,
    );
    const { largest } = await takeWrites(page);
    const peak = Math.max(...seen.heap);
    console.log(
      `flood: ${seen.rtt.length} round trips, worst ${Math.max(...seen.rtt).toFixed(0)} ms; heap ${heapBefore.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB; largest write ${largest} bytes`,
    );
    expect(peak).toBeLessThan(heapBefore + 200);
    // xterm parses a write without yielding to the page: it is handed at most 64 KiB at a time
    expect(largest).toBeLessThanOrEqual(64 * 1024);
  }, 150_000);

  it('a flood on the serial console leaves the page answering too, and ^C stops it', async () => {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.getByTestId('console-tab-serial').click();
    await page.getByTestId('serial-console').click();
    // as fast as QEMU's serial port goes, for a while, then ^C
    await page.keyboard.type('yes corral-serial-flood-0123456789-abcdefghijklmnopqrstuvwxyz');
    await page.keyboard.press('Enter');
    await expect
      .poll(() => termTail(page, 'serial-console', 5), { timeout: 60_000, interval: 250 })
      .toMatch(/^corral-serial-flood-0123456789-abcdefghijklmnopqrstuvwxyz\s*$/m);
    // a few seconds of it: the page answers, and the other tabs a click
    const t0 = Date.now();
    const seen = await watchPage(page, cdp, async () => Date.now() - t0 > 6000, 60_000);
    await page.getByTestId('console-tab-terminal').first().click();
    await page.getByTestId('terminal-screen').first().waitFor({ state: 'visible' });
    await page.getByTestId('console-tab-serial').click();
    await page.getByTestId('serial-console').click();
    console.log(`serial flood: ${seen.rtt.length} round trips, worst ${Math.max(...seen.rtt).toFixed(0)} ms`);
    // ^C, then a command whose answer shows the flood stopped; a guest whose CPU the flood and a
    // loaded host keep busy may take a while to act on it: ^C again rather than fail on timing
    for (let i = 1; ; i++) {
      await page.keyboard.press('Control+C');
      await page.keyboard.type('echo STOPPED-$((2+3))');
      await page.keyboard.press('Enter');
      try {
        await expect.poll(() => termText(page, 'serial-console'), { timeout: 40_000, interval: 250 }).toMatch(/^STOPPED-5\s*$/m);
        break;
      } catch (err) {
        if (i === 3) throw err;
      }
    }
  }, 240_000);

  it('says the VM is not running, and comes back when it runs again', async () => {
    await page.getByTestId('console-tab-display').click();
    await expect.poll(() => page.getByTestId('display-console').getAttribute('data-state'), { timeout: 30_000 }).toBe('connected');
    await api.call('vm.kill', { vm: vmId });
    await page.getByTestId('display-overlay').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('display-overlay').textContent()).toContain('VM is not running — start it');
    await page.getByTestId('display-start').click();
    await expect
      .poll(() => page.getByTestId('display-console').getAttribute('data-state'), { timeout: 30_000, interval: 200 })
      .toBe('connected');
  }, 120_000);

  it('had no page errors', () => {
    expect(problems).toEqual([]);
  });
});
