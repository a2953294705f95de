// Pools in the browser: the VM dialog lists the pools' files instead of asking for host paths,
// says how to add some when there are none, and uploads an ISO from this computer into the
// default pool (progress, then the SHA-256 of what arrived), which a VM then boots with. A
// real `corral serve` and real QEMU (TCG), driven through Chromium. Needs `npm run build`.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE, tempDir, waitFor } from '../helpers';
import { launchChromium } from '../browser';
import { ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';

const UI_INDEX = path.join(__dirname, '..', '..', 'out', 'renderer', 'index.html');
const SHOTS = process.env.CORRAL_SHOTS; // set to a directory to keep screenshots for review

/** A PUT to the upload endpoint from Node: status and JSON answer. */
function put(port: number, urlPath: string, body: Buffer, headers: Record<string, string>): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'PUT', headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as unknown) : null }));
    });
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'EPIPE' ? undefined : reject(err)));
    req.end(body);
  });
}

describe('storage pools in the browser', () => {
  let dataDir: string;
  let serve: ServeProcess;
  let api: WsApi;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const shot = async (name: string) => SHOTS && (await page.screenshot({ path: path.join(SHOTS, `${name}.png`) }));

  beforeAll(async () => {
    if (!fs.existsSync(UI_INDEX)) throw new Error(`the UI is not built (${UI_INDEX} is missing): run \`npm run build\` first`);
    dataDir = tempDir('corral-e2e-pools-');
    serve = await ServeProcess.start(dataDir); // with the pool "fixtures" (the guest's kernel and initrd)
    api = await WsApi.connect(serve.port, serve.token);
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    await page.goto(serve.url);
    await page.getByTestId('new-vm').waitFor();
  }, 60_000);

  afterAll(async () => {
    for (const vm of (await api?.call('vm.list', {}).catch(() => [])) ?? []) if (vm.pid) process.kill(vm.pid, 'SIGKILL');
    api?.close();
    await browser?.close();
    await serve?.stop();
  });

  it('lists the pools’ files by kind, and says how to add an ISO when there is none', async () => {
    await page.getByTestId('new-vm').click();
    await page.getByTestId('create-dialog').waitFor();
    const empty = page.getByTestId('vm-iso-empty');
    await empty.waitFor();
    expect(await empty.textContent()).toMatch(/No ISO images in the storage pools yet\. Upload one.*corral pool add NAME DIR/s);
    await page.getByTestId('advanced').click();
    // the kernel list holds the fixture's kernel, under its pool, and nothing else
    const kernels = await page
      .getByTestId('vm-kernel')
      .locator('optgroup')
      .evaluateAll((groups) =>
        groups.map((g) => ({ pool: g.getAttribute('label'), files: [...g.querySelectorAll('option')].map((o) => o.value) })),
      );
    expect(kernels).toEqual([{ pool: 'Pool “fixtures”', files: [FIXTURE.kernel] }]);
    const initrds = await page
      .getByTestId('vm-initrd')
      .locator('option')
      .evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(initrds).toEqual(['', FIXTURE.initrd]);
    await shot('pools-dialog-empty');
  });

  it('uploads an ISO with progress and shows its SHA-256; the file is listed and boots a VM', async () => {
    // an ISO 9660 image of 24 MiB, sent at 6 MiB/s: long enough to watch the progress
    const iso = Buffer.concat([Buffer.alloc(0x8001), Buffer.from('CD001'), randomBytes(24 * 1024 * 1024 - 0x8006)]);
    const file = path.join(tempDir(), 'tiny-installer.iso');
    fs.writeFileSync(file, iso);
    const sha = createHash('sha256').update(iso).digest('hex');
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: 6 * 1024 * 1024,
    });

    await page.getByTestId('vm-iso-file').setInputFiles(file);
    const progress = page.getByTestId('upload-progress');
    await progress.waitFor({ timeout: 30_000 });
    await waitFor(
      'the progress to move',
      async () => /Uploading tiny-installer\.iso: [1-9]\d? % of 24 MiB/.test((await progress.textContent()) ?? ''),
      60_000,
    );
    await shot('pools-upload-progress');
    const shown = page.getByTestId('upload-sha256');
    await shown.waitFor({ timeout: 120_000 });
    expect(await shown.textContent()).toBe(sha);
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });

    // stored in the default pool, listed as an ISO, and chosen in the dialog
    const stored = path.join(fs.realpathSync(dataDir), 'images', 'tiny-installer.iso');
    expect(createHash('sha256').update(fs.readFileSync(stored)).digest('hex')).toBe(sha);
    expect(fs.readdirSync(path.dirname(stored)).filter((n) => n.startsWith('.'))).toEqual([]); // no temp file left
    const files = await api.call('pool.files', { pool: 'default' });
    expect(files).toContainEqual(expect.objectContaining({ name: 'tiny-installer.iso', format: 'iso', size: iso.length }));
    expect(await page.getByTestId('vm-iso').inputValue()).toBe(stored);
    await shot('pools-upload-done');

    // usable: a VM created with it in the dialog starts with it as its CD-ROM
    await page.getByTestId('vm-name').fill('from upload');
    await page.getByTestId('vm-memory').fill('128');
    await page.getByTestId('vm-memory-unit').selectOption('MiB');
    await page.getByTestId('disk-mode-none').check();
    await page.getByTestId('create-submit').click();
    await page.getByTestId('create-dialog').waitFor({ state: 'detached', timeout: 30_000 });
    const vm = await api.call('vm.get', { vm: 'from upload' });
    expect(vm.config.iso).toBe(stored);
    const started = await api.call('vm.start', { vm: vm.id });
    expect(started.state).toBe('running');
    expect(fs.readFileSync(`/proc/${started.pid}/cmdline`, 'utf8')).toContain(stored);
    await api.call('vm.kill', { vm: vm.id });
    expect(problems).toEqual([]);
  }, 240_000);

  it('the endpoint refuses a wrong token, a bad name and a file larger than the free space, keeping nothing', async () => {
    const body = Buffer.from('x');
    const auth = { authorization: `Bearer ${serve.token}`, 'content-type': 'application/octet-stream' };
    expect((await put(serve.port, '/api/pools/default/files/a.iso', body, { authorization: 'Bearer nope' })).status).toBe(401);
    const hidden = await put(serve.port, '/api/pools/default/files/.hidden.iso', body, auth);
    expect(hidden).toMatchObject({ status: 400, body: { error: { field: 'name', reason: 'must not start with "."' } } });
    const slash = await put(serve.port, `/api/pools/default/files/${encodeURIComponent('../x.iso')}`, body, auth);
    expect(slash).toMatchObject({ status: 400, body: { error: { field: 'name' } } });
    const huge = await put(serve.port, '/api/pools/default/files/huge.iso', body, { ...auth, 'content-length': String(2 ** 52) });
    expect(huge).toMatchObject({ status: 400, body: { error: { field: 'size', reason: expect.stringMatching(/do not fit/) } } });
    const nopool = await put(serve.port, '/api/pools/nope/files/a.iso', body, auth);
    expect(nopool).toMatchObject({ status: 404, body: { error: { field: 'pool' } } });
    const twice = await put(serve.port, '/api/pools/default/files/tiny-installer.iso', body, auth);
    expect(twice).toMatchObject({ status: 409, body: { error: { field: 'name', reason: 'already exists' } } });
    const names = fs.readdirSync(path.join(dataDir, 'images'));
    expect(names.filter((n) => n !== 'tiny-installer.iso')).toEqual([]);
  });
});
