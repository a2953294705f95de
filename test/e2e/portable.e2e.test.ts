// Clone…, Export… and Import… in the browser against a real `corral serve`: a linked clone
// made from the page stands on a managed base; an export lands in the pool the user picked;
// the import dialog lists it and the imported VM appears; "Include the snapshots" writes a
// bundle that carries the tree. Needs `npm run build`.
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, waitFor } from '../helpers';
import { launchChromium } from '../browser';
import { tarEntries } from '../integration/bundle-files';
import { ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';

const UI_INDEX = path.join(__dirname, '..', '..', 'out', 'renderer', 'index.html');
const SHOTS = process.env.CORRAL_SHOTS; // set to a directory to keep screenshots for review

describe('clone, export and import in the browser', () => {
  let dataDir: string;
  let serve: ServeProcess;
  let api: WsApi;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const shot = async (name: string) => SHOTS && (await page.screenshot({ path: path.join(SHOTS, `${name}.png`) }));

  beforeAll(async () => {
    if (!fs.existsSync(UI_INDEX)) throw new Error(`the UI is not built (${UI_INDEX} is missing): run \`npm run build\` first`);
    dataDir = tempDir('corral-e2e-portable-');
    serve = await ServeProcess.start(dataDir);
    api = await WsApi.connect(serve.port, serve.token);
    await api.call('vm.create', { name: 'box', memoryMiB: 256, disk: { size: 16 * 1024 * 1024 } });
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    await page.goto(serve.url);
    await page.getByTestId('vm-item').filter({ hasText: 'box' }).click();
  }, 60_000);

  afterAll(async () => {
    api?.close();
    await browser?.close();
    await serve?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('makes a linked clone from the page', async () => {
    await page.getByTestId('action-clone').click();
    const dlg = page.getByTestId('portable-dialog');
    await expect.poll(() => dlg.getByTestId('clone-name').inputValue()).toBe('box-clone');
    await dlg.getByTestId('clone-linked').check();
    await shot('clone-dialog');
    await dlg.getByTestId('portable-submit').click();
    await dlg.waitFor({ state: 'detached' });
    const clone = await waitFor('the clone', async () => (await api.call('vm.list', {})).find((v) => v.name === 'box-clone'));
    expect(clone.config.disks[0]!.base).toMatch(/bases/);
    await page.getByTestId('vm-item').filter({ hasText: 'box-clone' }).waitFor();
  });

  it('exports into a pool, and imports the bundle back under a new name', async () => {
    await page
      .getByTestId('vm-item')
      .filter({ hasText: /^box$|box\b(?!-)/ })
      .first()
      .click();
    await page.getByTestId('action-export').click();
    const dlg = page.getByTestId('portable-dialog');
    await dlg.getByTestId('export-file').fill('box-bundle.tar');
    await dlg.getByTestId('portable-submit').click();
    await dlg.waitFor({ state: 'detached' });
    expect(fs.existsSync(path.join(dataDir, 'images', 'box-bundle.tar'))).toBe(true);

    await page.getByTestId('import-vm').click();
    const imp = page.getByTestId('portable-dialog');
    await imp.getByTestId('import-file').selectOption(fs.realpathSync(path.join(dataDir, 'images', 'box-bundle.tar')));
    await imp.locator('input').last().fill('box-moved');
    await shot('import-dialog');
    await imp.getByTestId('portable-submit').click();
    await imp.waitFor({ state: 'detached' });
    const vm = await waitFor('the imported VM', async () => (await api.call('vm.list', {})).find((v) => v.name === 'box-moved'));
    expect(vm.config.disks).toHaveLength(1);
    expect(problems).toEqual([]);
  });

  it('exports with the snapshots when the box is ticked: the bundle carries the tree', async () => {
    const vm = await api.call('vm.create', { name: 'snappy', memoryMiB: 256, disk: { size: 16 * 1024 * 1024 } });
    const snap = await api.call('snapshot.create', { vm: vm.id, name: 'first', memory: false });
    await page.getByTestId('vm-item').filter({ hasText: 'snappy' }).click();
    await page.getByTestId('action-export').click();
    const dlg = page.getByTestId('portable-dialog');
    await dlg.getByTestId('export-file').fill('snappy.tar');
    await dlg.getByTestId('export-snapshots').check();
    await expect.poll(() => dlg.textContent()).toContain('disks with their snapshots');
    await shot('export-snapshots-dialog');
    await dlg.getByTestId('portable-submit').click();
    await dlg.waitFor({ state: 'detached' });
    const manifest = JSON.parse(tarEntries(path.join(dataDir, 'images', 'snappy.tar'))[0]![1].toString()) as {
      version: number;
      snapshots: { list: Array<{ id: string; name: string }> };
    };
    expect(manifest.version).toBe(2);
    expect(manifest.snapshots.list.map((s) => [s.id, s.name])).toEqual([[snap.id, 'first']]);
    expect(problems).toEqual([]);
  });
});
