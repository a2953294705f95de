// Shared folders in the browser: the VM's overview has a "Shared folders" card with an empty
// state that says what to do, adds a folder (a refused one shows the host's reason on the
// field and saves nothing), shows the mount command with a copy button that copies exactly
// it, lets only an admin add (an operator sees why not) and removes a share. A real
// `corral serve` driven through Chromium. Needs `npm run build`.
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE, tempDir, waitFor } from '../helpers';
import { launchChromium } from '../browser';
import { ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';

const UI_INDEX = path.join(__dirname, '..', '..', 'out', 'renderer', 'index.html');
const SHOTS = process.env.CORRAL_SHOTS; // set to a directory to keep screenshots for review

describe('shared folders in the browser', () => {
  let dataDir: string;
  let hostDir: string;
  let serve: ServeProcess;
  let api: WsApi;
  let browser: Browser;
  let page: Page;
  let vmId = '';
  const problems: string[] = [];
  const shot = async (p: Page, name: string) => SHOTS && (await p.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true }));

  async function openVm(p: Page) {
    await p.locator(`[data-testid="vm-item"][data-vm-id="${vmId}"]`).click();
    await p.getByTestId('tab-overview').click();
    await p.getByTestId('shares').waitFor();
  }

  beforeAll(async () => {
    if (!fs.existsSync(UI_INDEX)) throw new Error(`the UI is not built (${UI_INDEX} is missing): run \`npm run build\` first`);
    dataDir = tempDir('corral-e2e-shares-');
    hostDir = tempDir('corral-e2e-folder-');
    serve = await ServeProcess.start(dataDir);
    api = await WsApi.connect(serve.port, serve.token);
    vmId = (await api.call('vm.create', { name: 'files', kernel: FIXTURE.kernel, initrd: FIXTURE.initrd, memoryMiB: 256 })).id;
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(serve.url).origin });
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    await page.goto(serve.url);
    await openVm(page);
  }, 60_000);

  afterAll(async () => {
    api?.close();
    await browser?.close();
    await serve?.stop();
    for (const d of [dataDir, hostDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  it('says what a shared folder is when there is none', async () => {
    const empty = page.getByTestId('shares-empty');
    await empty.waitFor();
    expect(await empty.textContent()).toMatch(/No shared folders\. Share a host folder and the guest mounts it by its tag/);
    await shot(page, 'shares-empty');
  });

  it('shows the host’s reason on the field for a refused folder, and saves nothing', async () => {
    await page.getByTestId('share-add').click();
    await page.getByTestId('share-path').fill(dataDir);
    await page.getByTestId('share-submit').click();
    const error = page.getByTestId('share-error');
    await error.waitFor();
    expect(await error.textContent()).toMatch(/is Corral's data dir, which holds its database/);
    expect(await page.getByTestId('share-path').getAttribute('aria-invalid')).toBe('true');
    await shot(page, 'shares-refused');
    expect(await api.call('vm.share.list', { vm: vmId })).toEqual([]);
  });

  it('adds a read-only folder and shows the mount command, which the copy button copies', async () => {
    await page.getByTestId('share-path').fill(hostDir);
    await page.getByTestId('share-tag').fill('docs');
    await page.getByTestId('share-ro').check();
    await page.getByTestId('share-submit').click();
    const row = page.getByTestId('share-docs');
    await row.waitFor();
    const [saved] = await api.call('vm.share.list', { vm: vmId });
    expect(saved).toMatchObject({ tag: 'docs', path: fs.realpathSync(hostDir), readOnly: true, pending: null });
    expect(await row.textContent()).toContain(saved!.mechanism);
    expect(await row.textContent()).toContain('read-only');
    const mount = page.getByTestId('share-mount-docs');
    expect(await mount.textContent()).toBe(saved!.mount);
    expect(saved!.mount).toMatch(
      /^mkdir -p \/mnt\/docs && mount -t (virtiofs -o ro|9p -o trans=virtio,version=9p2000\.L,msize=524288,ro) docs \/mnt\/docs$/,
    );
    await page.getByTestId('share-copy-docs').click();
    await waitFor('the button to say it copied', async () =>
      /Copied/.test((await page.getByTestId('share-copy-docs').textContent()) ?? ''),
    );
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(saved!.mount);
    await shot(page, 'shares-added');
  });

  it('lets an operator remove but not add, saying why', async () => {
    await api.call('user.add', { name: 'olga', role: 'operator', password: 'operator-pass' });
    const { token } = await api.call('token.create', { user: 'olga', role: 'operator' });
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const op = await context.newPage();
    op.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    await op.goto(`${new URL(serve.url).origin}/#token=${token}`);
    await openVm(op);
    await op.getByTestId('share-docs').waitFor();
    const add = op.getByTestId('share-add');
    expect(await add.isDisabled()).toBe(true);
    expect(await add.getAttribute('title')).toMatch(/needs the admin role/);
    expect(await op.getByTestId('share-remove-docs').isDisabled()).toBe(false);
    await shot(op, 'shares-operator');
    await context.close();
  });

  it('removes a share, back to the empty state', async () => {
    await page.getByTestId('share-remove-docs').click();
    await page.getByTestId('shares-empty').waitFor();
    expect(await api.call('vm.share.list', { vm: vmId })).toEqual([]);
    expect(problems).toEqual([]);
  });
});
