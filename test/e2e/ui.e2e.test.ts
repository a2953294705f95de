// The UI end to end: a real `corral serve` (real QEMU, TCG) driven through Chromium the way a
// user would — create the fixture guest in the dialog, start it, use the serial console, stop it.
// Needs `npm run build` (host and UI) and the guest fixture (built by the global setup).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { WebSocket as NodeWebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MS, CLI, FIXTURE, FIXTURE_DIR, tempDir, waitFor } from '../helpers';
import { launchChromium } from '../browser';

const ROOT = path.join(__dirname, '..', '..');
const UI_INDEX = path.join(ROOT, 'out', 'renderer', 'index.html');
const VM = 'e2e-guest';

class Serve {
  url = '';
  port = 0;
  stderr = '';
  readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  static async start(dataDir: string): Promise<Serve> {
    // port 0: the kernel picks a free one, and `serve` prints the URL with it
    const child = spawn(process.execPath, [CLI, 'serve', '--data', dataDir, '--listen', '127.0.0.1:0'], {
      env: { ...process.env, CORRAL_ACCEL: 'tcg' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const s = new Serve(child);
    let out = '';
    let gone = false;
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    void s.exited.then(() => (gone = true));
    const m = await waitFor(
      'corral serve to print its URL',
      () => {
        if (gone) throw new Error(`corral serve exited early: ${s.stderr}`);
        return /Open: (http:\/\/\S+#token=\S+)/.exec(out);
      },
      30_000,
    );
    s.url = m[1]!;
    s.port = Number(new URL(s.url).port);
    return s;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

function cli(dataDir: string, args: string[]): Promise<void> {
  return new Promise((resolve) => execFile(process.execPath, [CLI, '--data', dataDir, ...args], { timeout: 30_000 }, () => resolve()));
}

/** Everything in the console's scrollback (the DOM only holds the visible rows). */
function consoleText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const el = document.querySelector('[data-testid="serial-console"]') as (HTMLElement & { bufferText?: string }) | null;
    return el?.bufferText ?? '';
  });
}

/** What is on screen in the console right now. */
function consoleScreen(page: Page): Promise<string> {
  return page.evaluate(() =>
    [...document.querySelectorAll('[data-testid="serial-console"] .xterm-rows > div')]
      .map((row) => (row.textContent ?? '').replace(/\u00a0/g, ' '))
      .join('\n'),
  );
}

/** Resolves to "open" or "refused" for a WebSocket made by the page itself (same Origin). */
function pageSocket(page: Page, query: string): Promise<string> {
  return page.evaluate(
    (q) =>
      new Promise<string>((resolve) => {
        const ws = new window.WebSocket(`ws://${location.host}/api${q}`);
        ws.onopen = () => {
          ws.close();
          resolve('open');
        };
        ws.onclose = () => resolve('refused');
      }),
    query,
  );
}

describe('the UI served by `corral serve`', () => {
  let dataDir: string;
  let serve: Serve;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    if (!fs.existsSync(UI_INDEX)) throw new Error(`the UI is not built (${UI_INDEX} is missing): run \`npm run build\` first`);
    if (!fs.existsSync(FIXTURE.kernel)) throw new Error('the guest fixture is missing: run `bash test/fixtures/build-guest.sh`');
    dataDir = tempDir('corral-e2e-');
    serve = await Serve.start(dataDir);
    await cli(dataDir, ['pool', 'add', 'fixtures', FIXTURE_DIR]); // the guest's kernel and initrd, where they are
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      // Chromium notes that a <meta> CSP cannot carry frame-ancestors (the HTTP header does)
      if (msg.type() === 'error' && !/frame-ancestors/.test(msg.text())) problems.push(`console error: ${msg.text()}`);
    });
  }, 90_000);

  afterAll(async () => {
    // never leave a guest behind, whatever failed
    if (dataDir) await cli(dataDir, ['vm', 'kill', VM]);
    await browser?.close();
    await serve?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('refuses the API without the token', async () => {
    const refused = (url: string) =>
      new Promise<number>((resolve, reject) => {
        const ws = new NodeWebSocket(url);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => {
          ws.close();
          reject(new Error(`${url} was accepted`));
        });
        ws.on('error', () => undefined);
      });
    expect(await refused(`ws://127.0.0.1:${serve.port}/api`)).toBe(401);
    expect(await refused(`ws://127.0.0.1:${serve.port}/api?token=not-the-token`)).toBe(401);
  });

  it('shows what to do when opened without the token', async () => {
    const bare = await context.newPage();
    await bare.goto(`http://127.0.0.1:${serve.port}/`);
    await bare.getByTestId('no-token').waitFor();
    expect(await bare.getByTestId('no-token').textContent()).toContain('Open the URL printed by corral serve');
    // and the page itself cannot open the API without it either
    expect(await pageSocket(bare, '')).toBe('refused');
    expect(await pageSocket(bare, '?token=wrong')).toBe('refused');
    await bare.close();
  });

  it('opens with the token, then drops it from the address bar', async () => {
    await page.goto(serve.url);
    await page.getByText('No virtual machines yet').waitFor();
    expect(page.url()).not.toContain('token');
  });

  it('creates the fixture guest in the dialog', async () => {
    await page.getByTestId('new-vm').click();
    const dialog = page.getByTestId('create-dialog');
    await dialog.waitFor();
    // the name field has focus when the dialog opens
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('vm-name');
    await page.keyboard.type(VM);
    await page.getByTestId('vm-cpus').fill('1');
    await page.getByTestId('vm-memory').fill('256');
    await page.getByTestId('vm-memory-unit').selectOption('MiB');
    await page.getByTestId('disk-mode-none').check();
    await page.getByTestId('advanced').click();
    await page.getByTestId('vm-kernel').selectOption(FIXTURE.kernel);
    await page.getByTestId('vm-initrd').selectOption(FIXTURE.initrd);
    await page.getByTestId('vm-append').fill('console=ttyS0');
    await page.getByTestId('create-submit').click();
    await dialog.waitFor({ state: 'detached', timeout: 30_000 });

    await page.getByTestId('vm-item').filter({ hasText: VM }).waitFor();
    await expect.poll(() => page.getByTestId('state-badge').getAttribute('data-state')).toBe('stopped');
    const summary = await page.getByTestId('config-summary').textContent();
    expect(summary).toContain('256 MiB');
    expect(summary).toContain(FIXTURE.kernel);
    expect(summary).toContain('console=ttyS0');
  }, 60_000);

  it('starts it and shows the boot on the serial console', { timeout: BOOT_MS + 60_000 }, async () => {
    await page.getByTestId('tab-console').click();
    await page.getByTestId('serial-console').waitFor();
    await page.getByTestId('action-start').click();
    await expect.poll(() => page.getByTestId('state-badge').getAttribute('data-state'), { timeout: 30_000 }).toBe('running');
    await expect.poll(() => consoleText(page), { timeout: BOOT_MS, interval: 250 }).toContain(FIXTURE.banner);
    await expect.poll(() => consoleText(page), { timeout: 30_000, interval: 250 }).toContain(FIXTURE.prompt.trim());
    await expect.poll(() => page.getByTestId('serial-console').getAttribute('data-attached')).toBe('true');
    // the pid shows in the header once it runs
    expect(await page.getByTestId('vm-pid').textContent()).toMatch(/PID \d+/);
  });

  it('sends what you type to the guest and shows its answer', async () => {
    await page.getByTestId('serial-console').click();
    await page.keyboard.type('echo $((6*7))');
    await page.keyboard.press('Enter');
    await expect.poll(() => consoleText(page), { timeout: 30_000, interval: 200 }).toMatch(/^42\s*$/m);
    // and it is on screen, not only in the buffer (rendered on the next frame)
    await expect.poll(() => consoleScreen(page), { timeout: 30_000 }).toMatch(/^42\s*$/m);
  }, 60_000);

  it('stops it (ACPI) without blocking, and the badge reaches stopped', async () => {
    await page.getByTestId('action-stop').click();
    // the UI stays usable while the guest shuts down
    await page.getByTestId('tab-events').click();
    await page.getByTestId('events-table').waitFor();
    await expect.poll(() => page.getByTestId('state-badge').getAttribute('data-state'), { timeout: 90_000, interval: 200 }).toBe('stopped');
    await expect.poll(async () => (await page.getByTestId('events-table').textContent()) ?? '').toMatch(/Stopping\s*→\s*Stopped/);

    // the console keeps the old output and says how to get it back
    await page.getByTestId('tab-console').click();
    await page.getByTestId('console-overlay').waitFor();
    expect(await page.getByTestId('console-overlay').textContent()).toContain('VM is not running');
    expect(await consoleText(page)).toContain(FIXTURE.banner);
    await expect.poll(() => page.getByTestId('action-start').isEnabled()).toBe(true);
    expect(await page.getByTestId('action-stop').isDisabled()).toBe(true);
  }, 120_000);

  it('had no page errors', () => {
    expect(problems).toEqual([]);
  });
});
