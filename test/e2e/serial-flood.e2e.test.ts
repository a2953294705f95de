// Serial floods, end to end: a real `corral serve` and its UI in Chromium. A guest's emulated
// UART cannot print that much in any reasonable time under TCG, so the VM runs with a tap on
// its serial socket (test/fixtures/serial-tap-qemu.sh) that floods the host as a very fast
// guest would; from the socket on, everything is the product's own path. The tests check what
// reaches the page, never how fast: the throughput is a benchmark (test/bench/consoles.ts).
import fs from 'node:fs';
import { type Browser, type CDPSession, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataLayout, vmFiles } from '../../electron/core/paths';
import { launchChromium } from '../browser';
import { BOOT_MS, FIXTURE, SERIAL_TAP_QEMU, tapFlood, tempDir, waitFor } from '../helpers';
import { corral, ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';
import { checkFlood } from './flood-check';
import { heapMB, recordWrites, takeWrites, termTail, watchPage } from './page-helpers';

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
      // quiet: no kernel warnings (a loaded host makes some) among the flood's lines
      append: 'console=ttyS0 quiet',
    });
    serialSocket = vmFiles(dataLayout(dataDir), vm.id).serialSocket;
    await api.call('vm.start', { vm: vm.id });
    const log = async () => Buffer.from((await api.call('serial.log', { vm: vm.id })).data, 'base64').toString('latin1');
    await waitFor('the guest prompt', async () => (await log()).includes(FIXTURE.prompt), BOOT_MS, 250);
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
  }, BOOT_MS + 60_000);

  afterAll(async () => {
    api?.close();
    await browser?.close();
    if (dataDir) await corral(dataDir, ['vm', 'kill', VM]);
    await serve?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  /** Floods the console with numbered lines and checks all the page handed its terminal (see flood-check). */
  const flood = async (bytes: number, rate: number, tag: string) => {
    const skippedBefore = await skipped();
    await recordWrites(page, 'serial-console');
    await tapFlood(serialSocket, bytes, rate, tag, { numbered: true });
    await expect
      .poll(() => termTail(page, 'serial-console', 5), { timeout: 90_000, interval: 100 })
      .toMatch(new RegExp(`^TPUT-${tag}-END\\s*$`, 'm'));
    const { text, largest } = await takeWrites(page);
    return { seen: checkFlood(text, bytes, tag), skipped: (await skipped()) - skippedBefore, largest };
  };

  it('shows every byte in order when the page keeps up: nothing skipped', async () => {
    // The page keeps up by construction: each 1 MB burst (flat out) is shown before the next
    // is sent, and 1 MB is below what the host (4 MiB) or the page (8 MiB) hold back before skipping.
    for (let i = 0; i < 4; i++) {
      const { seen, skipped: now } = await flood(MB, 0, `burst${i}`);
      expect(seen).toEqual({ gaps: [], skipped: 0, notes: [] });
      expect(now).toBe(0);
    }
  }, 120_000);

  it('a steady 5 MB/s stream: all shown is in order and in place, every gap is a skip counted to the byte, the end arrives', async () => {
    // Whether this machine shows all of it (right now) is a benchmark (`npm run bench`); here
    // the accounting must be exact whatever the load: nothing is lost without being said.
    const { seen, skipped: now } = await flood(10 * MB, 5 * MB, 'steady');
    console.log(`5 MB/s: ${seen.skipped} bytes skipped in ${seen.gaps.length} gaps (${seen.notes.join(', ') || 'no notes'})`);
    expect(now).toBe(seen.skipped);
  }, 150_000);

  it('a 50 MB flood leaves the page answering and its memory bounded, and its last line is shown', async () => {
    const heapBefore = await heapMB(cdp);
    const skippedBefore = await skipped();
    // the skip chip, if it shows up (it goes a few seconds after the last skip)
    await page.evaluate(() => {
      const w = window as unknown as { __chip: string; __chipWatch: MutationObserver };
      w.__chip = '';
      w.__chipWatch = new MutationObserver(() => {
        w.__chip ||= document.querySelector('[data-testid="serial-skipped"]')?.textContent ?? '';
      });
      w.__chipWatch.observe(document.body, { childList: true, subtree: true });
    });
    await recordWrites(page, 'serial-console', false);
    const sending = tapFlood(serialSocket, 50 * MB, 0, 'flat');
    const seen = await watchPage(page, cdp, async () => /^TPUT-flat-END\s*$/m.test(await termTail(page, 'serial-console', 5)), 120_000);
    await sending;
    const { largest } = await takeWrites(page);
    const chip = await page.evaluate(() => {
      const w = window as unknown as { __chip: string; __chipWatch: MutationObserver };
      w.__chipWatch.disconnect();
      return w.__chip;
    });
    const peak = Math.max(...seen.heap);
    const lost = (await skipped()) - skippedBefore;
    // how quickly the page answered is a benchmark (npm run bench); this only says how it went
    console.log(
      `serial flood: ${seen.rtt.length} round trips, worst ${Math.max(...seen.rtt).toFixed(0)} ms; heap ${heapBefore.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB; ${(lost / MB).toFixed(1)} MB skipped; largest write ${largest} bytes`,
    );
    expect(peak).toBeLessThan(heapBefore + 200);
    // xterm parses a write without yielding to the page: it is handed at most 64 KiB at a time
    expect(largest).toBeLessThanOrEqual(64 * 1024);
    // faster than any page can draw: what was skipped is said (the chip; the note in the
    // terminal may have scrolled out of its 5000 lines by now)
    if (lost) expect(chip).toMatch(/Output skipped: .+ came too fast to show/);
  }, 150_000);

  it('the guest still answers on the console afterwards', async () => {
    await page.getByTestId('serial-console').click();
    await page.keyboard.type('echo AFTER-$((40+2))');
    await page.keyboard.press('Enter');
    await expect.poll(() => termTail(page, 'serial-console'), { timeout: 30_000, interval: 200 }).toMatch(/^AFTER-42\s*$/m);
  }, 60_000);

  it('had no page errors', () => {
    expect(problems).toEqual([]);
  });
});
