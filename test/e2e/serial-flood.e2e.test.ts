// A 50 MB flood on the serial console, end to end: a real `corral serve` and its UI in Chromium.
// A guest's emulated UART cannot print that much in any reasonable time under TCG, so the VM
// runs with a tap on its serial socket (test/fixtures/serial-tap-qemu.sh) that floods the host
// as a very fast guest would; from the socket on, everything is the product's own path.
import fs from 'node:fs';
import { type Browser, type CDPSession, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataLayout, vmFiles } from '../../electron/core/paths';
import { launchChromium } from '../browser';
import { FIXTURE, SERIAL_TAP_QEMU, tapFlood, tempDir, waitFor } from '../helpers';
import { corral, ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';
import { heapMB, termTail, watchPage } from './page-helpers';

const VM = 'flooded guest';
const MB = 1_000_000;

describe('a serial flood in the UI served by `corral serve`', () => {
  let dataDir: string;
  let serve: ServeProcess;
  let api: WsApi;
  let browser: Browser;
  let page: Page;
  let cdp: CDPSession;
  let serialSocket: string;
  const problems: string[] = [];

  const skipped = async () => Number(await page.getByTestId('serial-console').getAttribute('data-skipped'));

  beforeAll(async () => {
    dataDir = tempDir('corral-flood-');
    serve = await ServeProcess.start(dataDir, '127.0.0.1:0', { CORRAL_QEMU: SERIAL_TAP_QEMU });
    api = await WsApi.connect(serve.port, serve.token);
    const vm = await api.call('vm.create', {
      name: VM,
      memoryMiB: 192,
      kernel: FIXTURE.kernel,
      initrd: FIXTURE.initrd,
      append: 'console=ttyS0',
    });
    serialSocket = vmFiles(dataLayout(dataDir), vm.id).serialSocket;
    await api.call('vm.start', { vm: vm.id });
    const log = async () => Buffer.from((await api.call('serial.log', { vm: vm.id })).data, 'base64').toString('latin1');
    await waitFor('the guest prompt', async () => (await log()).includes(FIXTURE.prompt), 90_000, 250);
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.goto(serve.url);
    await page.getByTestId('vm-item').filter({ hasText: VM }).click();
    await page.getByTestId('tab-console').click();
    await page.getByTestId('console-tab-serial').click();
    await waitFor(
      'the serial console',
      async () => (await page.getByTestId('serial-console').getAttribute('data-attached')) === 'true',
      30_000,
      50,
    );
  }, 120_000);

  afterAll(async () => {
    api?.close();
    await browser?.close();
    if (dataDir) await corral(dataDir, ['vm', 'kill', VM]);
    await serve?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('shows all of a steady 5 MB/s stream: nothing skipped', async () => {
    await tapFlood(serialSocket, 10 * MB, 5 * MB, 'steady');
    await expect.poll(() => termTail(page, 'serial-console'), { timeout: 30_000, interval: 100 }).toMatch(/^TPUT-steady-END\s*$/m);
    expect(await skipped()).toBe(0);
  }, 60_000);

  it('a 50 MB flood leaves the page responsive and its memory bounded, and its last line is shown', async () => {
    const heapBefore = await heapMB(cdp);
    await page.evaluate(() => {
      const w = window as unknown as { __long: number[] };
      w.__long = [];
      new PerformanceObserver((l) => l.getEntries().forEach((e) => w.__long.push(Math.round(e.duration)))).observe({ type: 'longtask' });
    });
    const flood = tapFlood(serialSocket, 50 * MB, 0, 'flat');
    const seen = await watchPage(page, cdp, async () => /^TPUT-flat-END\s*$/m.test(await termTail(page, 'serial-console')), 120_000);
    await flood;
    const worst = Math.max(...seen.rtt);
    const peak = Math.max(...seen.heap);
    console.log('long tasks', await page.evaluate(() => (window as unknown as { __long: number[] }).__long.join(' ')));
    console.log(
      `serial flood: ${seen.rtt.length} round trips, worst ${worst.toFixed(0)} ms; heap ${heapBefore.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB; ${((await skipped()) / MB).toFixed(1)} MB skipped`,
    );
    expect(worst).toBeLessThan(1000);
    expect(peak).toBeLessThan(heapBefore + 200);
    // faster than any page can draw: what was skipped is said (the note in the terminal may
    // have scrolled out of its 5000 lines by now; the chip stays a few seconds)
    if (await skipped()) expect(await page.getByTestId('serial-skipped').isVisible()).toBe(true);
  }, 150_000);

  it('the guest still answers on the console afterwards', async () => {
    await page.getByTestId('serial-console').click();
    await page.keyboard.type('echo AFTER-$((40+2))');
    await page.keyboard.press('Enter');
    await expect.poll(() => termTail(page, 'serial-console'), { timeout: 15_000, interval: 200 }).toMatch(/^AFTER-42\s*$/m);
  }, 30_000);

  it('had no page errors', () => {
    expect(problems).toEqual([]);
  });
});
