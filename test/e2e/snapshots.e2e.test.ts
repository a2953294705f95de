// The Snapshots tab end to end: a real `corral serve` (QEMU under TCG) driven through
// Chromium. The empty state says what a snapshot is; snapshots taken in the tab form an
// indented tree with "you are here"; a RAM snapshot of a running guest shows a progress bar;
// a revert asks first and says the current state is lost; deleting a middle snapshot moves its
// child up. Needs `npm run build` and the guest fixture (global setup).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmInfo } from '../../electron/core/api/contract';
import { launchChromium } from '../browser';
import { FIXTURE, tempDir, waitFor } from '../helpers';
import { ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';

const UI_INDEX = path.join(__dirname, '..', '..', 'out', 'renderer', 'index.html');
const SHOTS = process.env.CORRAL_E2E_SHOTS ?? path.join(os.tmpdir(), 'corral-e2e-snapshots');

describe('the Snapshots tab', () => {
  let dataDir: string;
  let serve: ServeProcess;
  let api: WsApi;
  let browser: Browser;
  let page: Page;
  let vm: VmInfo;
  const problems: string[] = [];

  const row = (name: string) => page.locator(`[data-testid="snap-row"][data-name="${name}"]`);
  const depth = (name: string) => row(name).evaluate((el) => getComputedStyle(el).getPropertyValue('--depth').trim());
  const names = () => page.locator('[data-testid="snap-row"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-name')));
  const here = () => page.locator('[data-testid="snap-row"]:has([data-testid="snap-here"])').getAttribute('data-name');
  async function take(name: string, description = '') {
    await page.getByTestId('snap-name').fill(name);
    await page.getByTestId('snap-description').fill(description);
    await page.getByTestId('snap-take').click();
    await row(name).waitFor({ timeout: 120_000 });
  }

  beforeAll(async () => {
    if (!fs.existsSync(UI_INDEX)) throw new Error(`the UI is not built (${UI_INDEX} is missing): run \`npm run build\` first`);
    fs.mkdirSync(SHOTS, { recursive: true });
    dataDir = tempDir('corral-e2e-snap-');
    serve = await ServeProcess.start(dataDir);
    api = await WsApi.connect(serve.port, serve.token);
    vm = await api.call('vm.create', {
      name: 'snappy',
      memoryMiB: 256,
      kernel: FIXTURE.kernel,
      initrd: FIXTURE.initrd,
      append: 'console=ttyS0 quiet',
      disk: { size: 16 * 1024 * 1024 },
    });
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1300, height: 900 } })).newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    await page.goto(serve.url);
    await page.locator(`[data-testid="vm-item"][data-vm-id="${vm.id}"]`).click();
    await page.getByTestId('tab-snapshots').click();
  }, 120_000);

  afterAll(async () => {
    if (api) {
      await api.call('vm.kill', { vm: vm.id }).catch(() => undefined);
      api.close();
    }
    await browser?.close();
    await serve?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('says what a snapshot is and how to take one when there is none', async () => {
    const empty = page.getByTestId('snap-empty');
    await empty.waitFor();
    expect(await empty.textContent()).toMatch(/No snapshots yet[\s\S]*go back[\s\S]*corral vm snapshot create snappy/i);
    // a stopped VM has no memory to keep
    expect(await page.getByTestId('snap-memory').isDisabled()).toBe(true);
    await page.screenshot({ path: path.join(SHOTS, 'empty.png') });
  });

  it('builds an indented tree with "you are here"', async () => {
    await take('first', 'clean install');
    expect(await here()).toBe('first');
    await take('second');
    expect(await names()).toEqual(['first', 'second']);
    expect(await depth('first')).toBe('0');
    expect(await depth('second')).toBe('1');
    expect(await here()).toBe('second');
    expect(await row('first').textContent()).toContain('clean install');
  }, 120_000);

  it('shows progress while a RAM snapshot of the running guest is taken', async () => {
    await api.call('vm.start', { vm: vm.id });
    await waitFor('the memory switch', () => page.getByTestId('snap-memory').isEnabled(), 60_000, 200);
    // record whether the progress bar ever appears (the job may be short)
    await page.evaluate(() => {
      const w = window as unknown as { __sawProgress: boolean };
      w.__sawProgress = false;
      new MutationObserver(() => {
        if (document.querySelector('[data-testid="snap-progress"]')) w.__sawProgress = true;
      }).observe(document.body, { childList: true, subtree: true });
    });
    await take('live', 'with RAM');
    expect(await page.evaluate(() => (window as unknown as { __sawProgress: boolean }).__sawProgress)).toBe(true);
    expect(await row('live').textContent()).toMatch(/Memory and disks[\s\S]*paused \d+ ms/);
    expect(await depth('live')).toBe('2');
    await page.screenshot({ path: path.join(SHOTS, 'tree.png') });
  }, 180_000);

  it('asks before a revert, saying the current state is lost', async () => {
    await row('first').getByTestId('snap-revert').click();
    const dialog = page.getByTestId('snap-revert-dialog');
    await dialog.waitFor();
    expect(await dialog.textContent()).toMatch(/current state of “snappy” will be lost/);
    await page.screenshot({ path: path.join(SHOTS, 'revert-dialog.png') });
    await dialog.getByTestId('confirm').click();
    await waitFor('"you are here" on first', async () => (await here()) === 'first', 180_000, 250);
    // a snapshot of the stopped VM holds no RAM: the guest was restarted to go back
    await waitFor('the guest to run again', async () => (await api.call('vm.get', { vm: vm.id })).state === 'running', 120_000, 250);
  }, 240_000);

  it('deleting a middle snapshot moves its child up', async () => {
    await row('second').getByTestId('snap-delete').click();
    await page.getByTestId('snap-delete-dialog').getByTestId('confirm').click();
    await waitFor('second to go', async () => !(await names()).includes('second'), 60_000, 250);
    expect(await names()).toEqual(['first', 'live']);
    expect(await depth('live')).toBe('1');
    await page.screenshot({ path: path.join(SHOTS, 'after-delete.png') });
    expect(problems).toEqual([]);
  }, 120_000);
});
