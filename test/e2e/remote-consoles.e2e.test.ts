// Consoles of a VM on another host, in the browser: two real `corral serve` hosts on loopback
// form a cluster, a guest runs on beta, and alpha's page opens its serial console (typing runs
// a command in the guest on beta) and its display (connected, the guest's screen drawn). When
// beta dies the serial console says why it closed and offers to reconnect. Needs `npm run build`.
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MS, FIXTURE, tempDir, waitFor } from '../helpers';
import { launchChromium } from '../browser';
import { ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';
import { formAlphaBeta } from './two-hosts';
import { termText } from './page-helpers';

const UI_INDEX = path.join(__dirname, '..', '..', 'out', 'renderer', 'index.html');
const SHOTS = process.env.CORRAL_SHOTS; // set to a directory to keep screenshots for review

describe('consoles of a VM on another host, in the browser', () => {
  const dirs = [tempDir('corral-e2e-rc-a-'), tempDir('corral-e2e-rc-b-')];
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
    const [a, b] = apis as [WsApi, WsApi];
    await formAlphaBeta(a, b);
    await b.call('vm.create', {
      name: 'far',
      memoryMiB: 192,
      kernel: FIXTURE.kernel,
      initrd: FIXTURE.initrd,
      append: 'console=tty0 console=ttyS0',
    });
    await b.call('vm.start', { vm: 'far' });
    await waitFor(
      'the guest on beta to boot',
      async () =>
        Buffer.from((await b.call('serial.log', { vm: 'far' })).data, 'base64')
          .toString()
          .includes(FIXTURE.prompt),
      BOOT_MS,
      500,
    );
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  }, BOOT_MS + 240_000);

  afterAll(async () => {
    for (const api of apis) api.close();
    await browser?.close();
    for (const s of serves) await s.stop();
    // beta is killed below: its etcd member and its guest outlived it
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (dirs.some((d) => cmd.includes(d))) process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }, 120_000);

  it("alpha's page types into the serial console of beta's guest and shows its display", async () => {
    await page.goto(serves[0]!.url);
    const beta = page.locator('[data-testid="tree-host"][data-host="beta"]');
    await waitFor("beta's VM in the tree", async () => (await beta.getByTestId('vm-item').count()) === 1, 60_000, 200);
    await beta.getByTestId('vm-item').click();
    await page.getByTestId('tab-console').click();
    await page.getByTestId('serial-console').waitFor();
    await expect.poll(() => page.getByTestId('serial-console').getAttribute('data-attached'), { timeout: 60_000 }).toBe('true');
    await page.getByTestId('serial-console').click();
    await page.keyboard.type('echo remote-$((6*7))');
    await page.keyboard.press('Enter');
    await expect.poll(() => termText(page, 'serial-console'), { timeout: 60_000, interval: 200 }).toMatch(/^remote-42\s*$/m);
    await shot('remote-serial');
    await page.getByTestId('console-tab-display').click();
    await expect.poll(() => page.getByTestId('display-console').getAttribute('data-state'), { timeout: 60_000 }).toBe('connected');
    await shot('remote-display');
    await page.getByTestId('console-tab-serial').click();
    await page.getByTestId('serial-console').waitFor({ state: 'visible' });
  }, 180_000);

  it('beta dying closes the serial console with a reason and a Reconnect', async () => {
    await serves[1]!.stop('SIGKILL');
    const ended = page.getByTestId('serial-ended');
    await ended.waitFor({ timeout: 60_000 });
    expect(await ended.textContent()).toMatch(/host "beta"/);
    expect(await page.getByTestId('serial-reconnect').count()).toBe(1);
    await shot('remote-serial-ended');
    expect(problems).toEqual([]);
  }, 120_000);
});
