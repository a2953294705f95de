// Autostart in the browser, against a real `corral serve`: the VM dialog sets start at boot,
// its order and delay and the shutdown stop timeout; a value out of range is refused on its
// field and saves nothing; the overview then says what the machine will do with the VM, and
// the host has the settings. Needs `npm run build` (global setup builds the guest fixture).
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../browser';
import { FIXTURE, tempDir, waitFor } from '../helpers';
import { ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';

const UI_INDEX = path.join(__dirname, '..', '..', 'out', 'renderer', 'index.html');

describe('autostart in the VM dialog', () => {
  let serve: ServeProcess;
  let api: WsApi;
  let browser: Browser;
  let page: Page;
  let vmId: string;
  const problems: string[] = [];

  beforeAll(async () => {
    if (!fs.existsSync(UI_INDEX)) throw new Error(`the UI is not built (${UI_INDEX} is missing): run \`npm run build\` first`);
    serve = await ServeProcess.start(tempDir('corral-e2e-auto-'));
    api = await WsApi.connect(serve.port, serve.token);
    vmId = (await api.call('vm.create', { name: 'boots', memoryMiB: 256, kernel: FIXTURE.kernel, initrd: FIXTURE.initrd })).id;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(serve.url);
    await page.locator(`[data-testid="vm-item"][data-vm-id="${vmId}"]`).click();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    api?.close();
    await serve?.stop();
  });

  it('sets start at boot, order, delay and stop timeout; refuses an out-of-range timeout', async () => {
    await expect(page.getByTestId('autostart-summary').textContent()).resolves.toMatch(/Stays off/);
    await page.getByTestId('action-edit').click();
    const dialog = page.getByTestId('edit-dialog');
    // open already for a VM with a kernel; a click would close it
    if (!(await dialog.locator('details:has([data-testid="advanced"])').evaluate((d) => (d as HTMLDetailsElement).open)))
      await dialog.getByTestId('advanced').click();
    await dialog.getByTestId('autostart').check();
    await dialog.getByTestId('autostart-order').fill('3');
    await dialog.getByTestId('autostart-delay').fill('20');
    await dialog.getByTestId('stop-timeout').fill('99999');
    await dialog.getByTestId('create-submit').click();
    await expect(dialog.locator('[role="alert"]').first().textContent()).resolves.toMatch(/0 to 3600 seconds/);
    expect((await api.call('vm.get', { vm: vmId })).config.autostart).toBe(false); // nothing saved

    await dialog.getByTestId('stop-timeout').fill('90');
    await dialog.getByTestId('create-submit').click();
    await waitFor('the dialog to close', async () => (await dialog.count()) === 0, 30_000);
    expect((await api.call('vm.get', { vm: vmId })).config).toMatchObject({
      autostart: true,
      autostartOrder: 3,
      autostartDelaySec: 20,
      stopTimeoutSec: 90,
    });
    await waitFor(
      'the overview to show it',
      async () => /Starts, order 3.*next group waits 20 s/s.test((await page.getByTestId('autostart-summary').textContent()) ?? ''),
      10_000,
    );
    await expect(page.getByTestId('shutdown-summary').textContent()).resolves.toMatch(/forced off after 1 min 30 s|forced off after 90 s/);
    expect(problems).toEqual([]);
  });
});
