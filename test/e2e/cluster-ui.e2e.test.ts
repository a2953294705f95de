// The cluster in the browser: two real `corral serve` hosts on loopback (each its own ports and
// etcd member) form a cluster; host a's page shows the host tree (cluster → hosts with their
// room and health → VMs) and the create dialog's host picker, which creates a VM on host b.
// A single host's page shows neither. Needs `npm run build`.
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endProcessesOf, tempDir, waitFor } from '../helpers';
import { launchChromium } from '../browser';
import { ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';
import { formAlphaBeta } from './two-hosts';

const UI_INDEX = path.join(__dirname, '..', '..', 'out', 'renderer', 'index.html');
const SHOTS = process.env.CORRAL_SHOTS; // set to a directory to keep screenshots for review

describe('the cluster in the browser', () => {
  const dirs = [tempDir('corral-e2e-cl-a-'), tempDir('corral-e2e-cl-b-')];
  let serves: ServeProcess[] = [];
  let apis: WsApi[] = [];
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const shot = async (name: string) => SHOTS && (await page.screenshot({ path: path.join(SHOTS, `${name}.png`) }));

  beforeAll(async () => {
    if (!fs.existsSync(UI_INDEX)) throw new Error(`the UI is not built (${UI_INDEX} is missing): run \`npm run build\` first`);
    serves = await Promise.all(dirs.map((d) => ServeProcess.start(d)));
    apis = await Promise.all(serves.map((s) => WsApi.connect(s.port, s.token)));
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  }, 120_000);

  afterAll(async () => {
    for (const api of apis) api.close();
    await browser?.close();
    for (const s of serves) await s.stop();
    for (const d of dirs) endProcessesOf(d);
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }, 120_000);

  it('a single host shows the flat list and no host picker', async () => {
    await page.goto(serves[0]!.url);
    await page.getByTestId('new-vm').waitFor();
    await page.getByTestId('new-vm').click();
    await page.getByTestId('vm-name').waitFor();
    expect(await page.getByTestId('vm-host').count()).toBe(0);
    await page.keyboard.press('Escape');
    expect(await page.getByTestId('host-tree').count()).toBe(0);
  });

  it('shows the host tree, and the picker creates a VM on the host chosen', async () => {
    const [a, b] = apis as [WsApi, WsApi];
    await formAlphaBeta(a, b);
    await b.call('vm.create', { name: 'web-beta', memoryMiB: 256 });
    await a.call('vm.create', { name: 'db-alpha', memoryMiB: 512 });

    await page.reload();
    const tree = page.getByTestId('host-tree');
    await tree.waitFor();
    await waitFor('both hosts in the tree', async () => (await page.getByTestId('tree-host').count()) === 2, 30_000, 100);
    const alpha = page.locator('[data-testid="tree-host"][data-host="alpha"]');
    const beta = page.locator('[data-testid="tree-host"][data-host="beta"]');
    await waitFor("beta's VM under beta", async () => (await beta.getByTestId('vm-item').count()) === 1, 30_000, 100);
    expect(await alpha.textContent()).toContain('this host');
    expect(await alpha.getByTestId('vm-item').textContent()).toContain('db-alpha');
    expect(await beta.getByTestId('vm-item').textContent()).toContain('web-beta');
    expect(await beta.getByTestId('host-capacity').textContent()).toMatch(/\/ .*· \d+ CPU/);
    expect(await page.getByTestId('cluster-summary').textContent()).toBe('2 of 2 hosts reporting');
    await shot('cluster-tree');

    await page.getByTestId('new-vm').click();
    const picker = page.getByTestId('vm-host');
    await picker.waitFor();
    expect(await picker.inputValue()).toBe('');
    const options = await picker.locator('option').allTextContents();
    expect(options[0]).toBe('Automatic (most room)');
    expect(options.some((o) => /^beta — .* free to commit$/.test(o))).toBe(true);
    await page.getByTestId('vm-name').fill('made-on-beta');
    await picker.selectOption('beta');
    await shot('cluster-picker');
    await page.getByTestId('create-submit').click();
    await waitFor('the new VM under beta', async () => (await beta.getByTestId('vm-item').count()) === 2, 60_000, 100);
    // beta has it as its own VM
    expect((await b.call('vm.list', {})).find((v) => v.name === 'made-on-beta')?.host?.name).toBe('beta');
    await shot('cluster-created');
    expect(problems).toEqual([]);
  });
});
