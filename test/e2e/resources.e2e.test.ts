// Resources, supervision and the live list, end to end: a real `corral serve` (QEMU under
// TCG) driven through Chromium. Memory changed with the slider on a running guest applies
// live; more than it booted with waits for the next boot; the CPU graph follows a busy guest;
// an oversized VM is refused with the numbers; killing QEMU shows restarting / crash loop; the
// list shows live thumbnails. Needs `npm run build` and the guest fixture (global setup).
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmInfo } from '../../electron/core/api/contract';
import { BOOT_MS, busyThreshold, FIXTURE, tempDir, waitFor } from '../helpers';
import { launchChromium } from '../browser';
import { ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';

const ROOT = path.join(__dirname, '..', '..');
const UI_INDEX = path.join(ROOT, 'out', 'renderer', 'index.html');
const MiB = 1024 * 1024;

const guest = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  cpus: 1,
  memoryMiB: 256,
  kernel: FIXTURE.kernel,
  initrd: FIXTURE.initrd,
  append: 'console=ttyS0 quiet',
  ...extra,
});

/** Forces every VM off through the host (so no restart policy brings one back), then kills any pid still left. */
async function stopAll(api: WsApi): Promise<void> {
  const list = await api.call('vm.list', {}).catch(() => [] as VmInfo[]);
  await Promise.all(list.filter((v) => v.pid).map((v) => api.call('vm.kill', { vm: v.id }).catch(() => undefined)));
  for (const v of await api.call('vm.list', {}).catch(() => list)) {
    if (!v.pid) continue;
    try {
      process.kill(v.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

describe('resources, supervision and the list in the browser', () => {
  let dataDir: string;
  let serve: ServeProcess;
  let api: WsApi;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let vm: VmInfo;
  const problems: string[] = [];

  const get = (id: string) => api.call('vm.get', { vm: id });
  const badge = () => page.getByTestId('state-badge').getAttribute('data-state');
  const select = async (id: string) => {
    await page.locator(`[data-testid="vm-item"][data-vm-id="${id}"]`).click();
    const name = (await get(id)).name;
    await waitFor(`the page of "${name}"`, async () => (await page.locator('h1').textContent()) === name, 30_000);
  };
  async function running(id: string, notPid: number | null = null): Promise<VmInfo> {
    return waitFor(
      'the VM to run',
      async () => {
        const v = await get(id);
        return v.state === 'running' && v.pid !== null && v.pid !== notPid ? v : null;
      },
      60_000,
      100,
    );
  }
  async function prompt(id: string): Promise<void> {
    await waitFor(
      'the guest prompt',
      async () =>
        Buffer.from((await api.call('serial.log', { vm: id, tailBytes: 4096 })).data, 'base64')
          .toString()
          .includes(FIXTURE.prompt),
      BOOT_MS,
      250,
    );
  }

  beforeAll(async () => {
    if (!fs.existsSync(UI_INDEX)) throw new Error(`the UI is not built (${UI_INDEX} is missing): run \`npm run build\` first`);
    dataDir = tempDir('corral-e2e-res-');
    serve = await ServeProcess.start(dataDir);
    api = await WsApi.connect(serve.port, serve.token);
    vm = await api.call('vm.create', guest('res-guest'));
    await api.call('vm.start', { vm: vm.id });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    // desktop notifications: allowed, and recorded instead of shown
    await context.grantPermissions(['notifications'], { origin: `http://127.0.0.1:${serve.port}` });
    await context.addInitScript(() => {
      const shown: Array<{ title: string; body: string }> = [];
      (window as unknown as { __notes: typeof shown }).__notes = shown;
      class FakeNotification {
        static permission = 'granted';
        static requestPermission = async () => 'granted';
        onclick: (() => void) | null = null;
        constructor(title: string, opts?: { body?: string }) {
          shown.push({ title, body: opts?.body ?? '' });
        }
        close() {}
      }
      (window as unknown as { Notification: unknown }).Notification = FakeNotification;
      // every thumbnail the page asks for, with the page's time it sent the request
      const shots: Array<{ at: number; vm: string }> = [];
      (window as unknown as { __shots: typeof shots }).__shots = shots;
      const send = WebSocket.prototype.send;
      WebSocket.prototype.send = function (this: WebSocket, data: Parameters<WebSocket['send']>[0]) {
        if (typeof data === 'string' && data.includes('"vm.screenshot"')) {
          const msg = JSON.parse(data) as { args: { vm: string } };
          shots.push({ at: performance.now(), vm: msg.args.vm });
        }
        return send.call(this, data);
      };
    });
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/frame-ancestors/.test(msg.text())) problems.push(`console error: ${msg.text()}`);
    });
    await page.goto(serve.url);
    await running(vm.id);
    await select(vm.id);
  }, 120_000);

  afterAll(async () => {
    // never leave a guest behind, whatever failed
    if (api) {
      await stopAll(api);
      api.close();
    }
    await browser?.close();
    await serve?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('shows a live thumbnail of a running VM in the list', async () => {
    const thumb = page.locator(`[data-testid="vm-item"][data-vm-id="${vm.id}"] [data-testid="vm-thumb"]`);
    await expect.poll(() => thumb.getAttribute('data-loaded'), { timeout: 30_000, interval: 250 }).toBe('true');
    // a real picture: the canvas holds the scaled screenshot
    const size = await thumb.locator('canvas').evaluate((c: HTMLCanvasElement) => [c.width, c.height]);
    expect(size[0]).toBeGreaterThan(50);
    expect(size[1]).toBeGreaterThan(20);
  }, 120_000);

  it('refreshes thumbnails about every 5 s, and not while the page is hidden', async () => {
    // the page's own record of its requests (see the init script): when each was sent, by the page's clock
    const shots = () =>
      page.evaluate(
        (id) => (window as unknown as { __shots: Array<{ at: number; vm: string }> }).__shots.filter((s) => s.vm === id).map((s) => s.at),
        vm.id,
      );
    // while visible it keeps asking, and never sooner than 5 s after the last time
    const from = (await shots()).length;
    await expect.poll(async () => (await shots()).length - from, { timeout: 60_000, interval: 250 }).toBeGreaterThanOrEqual(2);
    const times = (await shots()).slice(from);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThan(4500);
    const setVisibility = (state: string) =>
      page.evaluate((s) => {
        Object.defineProperty(document, 'visibilityState', { value: s, configurable: true });
        Object.defineProperty(document, 'hidden', { value: s === 'hidden', configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
        return performance.now();
      }, state);
    // hidden: not one request sent after that (one already sent may still be answered)
    const hiddenAt = await setVisibility('hidden');
    await new Promise((r) => setTimeout(r, 8000));
    expect((await shots()).filter((at) => at > hiddenAt)).toEqual([]);
    const visibleAt = await setVisibility('visible');
    await expect.poll(async () => (await shots()).filter((at) => at > visibleAt).length, { timeout: 30_000 }).toBeGreaterThan(0);
  }, 120_000);

  it('lowers memory with the slider on the running VM: applied live, nothing pending', { timeout: BOOT_MS + 60_000 }, async () => {
    await prompt(vm.id);
    await page.getByTestId('tab-resources').click();
    const slider = page.getByTestId('res-memory-slider');
    await slider.focus();
    await page.keyboard.press('ArrowLeft'); // 256 → 224 MiB
    await expect.poll(() => page.getByTestId('res-memory-value').textContent()).toBe('224 MiB');
    expect(await page.getByTestId('hint-res-memory').textContent()).toContain('Live');
    await page.getByTestId('res-apply').click();
    await expect.poll(() => page.getByTestId('apply-outcome').textContent(), { timeout: 30_000 }).toContain('Applied live');
    expect(await page.getByTestId('pending-res-memory').count()).toBe(0);
    const now = await get(vm.id);
    expect(now.config.memoryMiB).toBe(224);
    expect(now.pending).not.toContain('memoryMiB');
    // and QEMU's balloon got there
    await waitFor(
      'the balloon at 224 MiB',
      async () => {
        const s = await api.call('vm.stats', { vm: vm.id, range: 'hour' });
        return s.at(-1)?.balloonBytes === 224 * MiB;
      },
      30_000,
      500,
    );
  });

  it('raises memory above what it booted with: saved, with a pending badge', async () => {
    await page.getByTestId('res-memory-input').fill('512');
    await expect.poll(() => page.getByTestId('hint-res-memory').textContent()).toContain('Next boot');
    await page.getByTestId('res-apply').click();
    await page.getByTestId('pending-res-memory').waitFor({ timeout: 30_000 });
    const now = await get(vm.id);
    expect(now.config.memoryMiB).toBe(512);
    expect(now.pending).toContain('memoryMiB');
    // the page says what waits for the next start
    expect(await page.getByTestId('pending-notice').textContent()).toContain('memory');
  }, 120_000);

  it('draws the CPU rising while the guest burns CPU', async () => {
    const cpu = page.getByTestId('chart-cpu');
    await expect.poll(async () => Number(await cpu.getAttribute('data-points')), { timeout: 30_000 }).toBeGreaterThan(1);
    // three samples of the idle guest, taken from now on
    const since = Date.now();
    const idle = await waitFor(
      'three idle samples',
      async () => {
        const s = (await api.call('vm.stats', { vm: vm.id, range: 'hour' })).filter((x) => x.at > since);
        return s.length >= 3 ? s.map((x) => x.cpuPercent) : null;
      },
      60_000,
      500,
    );
    await api.call('serial.write', { vm: vm.id, data: Buffer.from('(while :; do :; done) & true\n').toString('base64') });
    await expect
      .poll(async () => Number(await cpu.getAttribute('data-last')), { timeout: 60_000, interval: 500 })
      .toBeGreaterThan(busyThreshold(idle));
    // the header shows it too
    expect(await cpu.locator('figcaption').textContent()).toMatch(/\d+ %/);
    await api.call('vm.kill', { vm: vm.id });
  }, 150_000);

  it('refuses to start a VM with more memory than the host, naming the numbers', async () => {
    const res = await api.call('host.resources', {});
    const huge = await api.call('vm.create', guest('too-big', { memoryMiB: Math.ceil(res.memoryBytes / MiB) + 1024 }));
    await select(huge.id);
    await page.getByTestId('tab-resources').click();
    // foreseen on the Resources tab
    expect(await page.getByTestId('admission-forecast').textContent()).toContain('will not start');
    await page.getByTestId('action-start').click();
    const toast = page.getByTestId('toast-error').filter({ hasText: 'too-big' });
    await toast.waitFor({ timeout: 30_000 });
    const text = (await toast.textContent()) ?? '';
    expect(text).toMatch(/not enough memory/);
    expect(text).toMatch(/limit \d/);
    expect(text).toMatch(/overcommit/);
    expect((await get(huge.id)).state).toBe('stopped');
  }, 120_000);

  it('shows restarting, then a crash loop with the reason and "Start again", after QEMU is killed', async () => {
    const crashy = await api.call(
      'vm.create',
      guest('crashy', { memoryMiB: 128, restart: 'on-failure', maxCrashes: 2, crashWindowSec: 900 }),
    );
    await api.call('vm.start', { vm: crashy.id });
    const first = await running(crashy.id);
    await select(crashy.id);
    await page.getByTestId('tab-overview').click();
    // every state the badge shows, however briefly
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { __states: string[] }).__states = seen;
      const note = () => {
        const s = document.querySelector('[data-testid="state-badge"]')?.getAttribute('data-state');
        if (s && seen.at(-1) !== s) seen.push(s);
      };
      new MutationObserver(note).observe(document.body, {
        subtree: true,
        attributes: true,
        childList: true,
        attributeFilter: ['data-state'],
      });
      note();
    });
    // the window is in the background: crashes become desktop notifications
    await page.evaluate(() => Object.defineProperty(document, 'hasFocus', { value: () => false, configurable: true }));

    process.kill(first.pid!, 'SIGKILL');
    const second = await running(crashy.id, first.pid);
    const states = await page.evaluate(() => (window as unknown as { __states: string[] }).__states);
    expect(states.some((s) => s === 'crashed' || s === 'restarting')).toBe(true);

    process.kill(second.pid!, 'SIGKILL');
    await expect.poll(badge, { timeout: 30_000 }).toBe('crash-loop');
    const notice = page.getByTestId('crash-notice');
    expect(await notice.textContent()).toContain('QEMU was killed');
    expect(await notice.textContent()).toContain('SIGKILL');
    expect(await page.getByTestId('state-badge').getAttribute('title')).toContain('QEMU was killed');
    await page.getByTestId('start-again').waitFor();

    // the crash reports are in the timeline
    await page.getByTestId('tab-events').click();
    await page.locator('label', { has: page.getByTestId('events-crashes') }).click();
    const report = page.getByTestId('crash-report').first();
    await report.locator('summary').click();
    expect(await report.textContent()).toMatch(/signal SIGKILL/);

    // and were announced
    const notes = await page.evaluate(() => (window as unknown as { __notes: Array<{ title: string }> }).__notes);
    expect(notes.map((n) => n.title).join('\n')).toMatch(/crashy is crash-looping/);

    // "Start again" starts it
    await page.getByTestId('start-again').click();
    await running(crashy.id);
    await expect.poll(badge, { timeout: 30_000 }).toBe('running');
    await api.call('vm.kill', { vm: crashy.id });
  }, 180_000);

  it('had no page errors', () => {
    expect(problems).toEqual([]);
  });
});
