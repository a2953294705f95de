// The VM list under load: 200 VMs in a real `corral serve`, four of them running (so stats
// push every 2 s and thumbnails refresh), scrolled continuously in Chromium for 5 s while
// every frame's time is recorded (requestAnimationFrame deltas). Target: 60 fps. Also counts
// how many rows a stats push touches (fine-grained updates: only the running ones on screen).
import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import type { VmInfo } from '../../electron/core/api/contract';
import { FIXTURE, tempDir, waitFor } from '../helpers';
import { chromiumPath } from '../browser';
import { ServeProcess } from '../integration/serve-process';
import { WsApi } from '../integration/ws-client';
import { median, ms, type Row } from './lib';

const VMS = 200;
const RUNNING = [0, 3, 40, 120];
const SCROLL_MS = 5000;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

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

export async function listRows(): Promise<Row[]> {
  const exe = chromiumPath();
  const dataDir = tempDir('corral-bench-ui-');
  let serve: ServeProcess | null = null;
  let api: WsApi | null = null;
  let browser: Browser | null = null;
  try {
    serve = await ServeProcess.start(dataDir);
    api = await WsApi.connect(serve.port, serve.token);
    const names = Array.from({ length: VMS }, (_, i) => `vm-${String(i + 1).padStart(3, '0')}`);
    const created: VmInfo[] = [];
    for (let i = 0; i < names.length; i += 20) {
      created.push(
        ...(await Promise.all(
          names.slice(i, i + 20).map((name) =>
            api!.call('vm.create', {
              name,
              cpus: 1,
              memoryMiB: 128,
              kernel: FIXTURE.kernel,
              initrd: FIXTURE.initrd,
              append: 'console=ttyS0 quiet',
            }),
          ),
        )),
      );
    }
    for (const i of RUNNING) await api.call('vm.start', { vm: created[i]!.id });
    // booted and idle (four TCG boots on a small machine would measure the boot, not the list)
    await waitFor(
      'the running guests to settle',
      async () => {
        for (const i of RUNNING) {
          // the first sample of a VM reads 0 (a rate needs two): wait for a few
          const recent = (await api!.call('vm.stats', { vm: created[i]!.id, range: 'hour' })).slice(-2);
          if (recent.length < 2 || recent.some((s) => s.cpuPercent > 25)) return false;
        }
        return true;
      },
      120_000,
      1000,
    );

    browser = await chromium.launch({
      executablePath: exe,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    // tsx (esbuild, keepNames) wraps named functions in __name(): give the page a no-op one
    await context.addInitScript({ content: 'window.__name = (f) => f;' });
    const page = await context.newPage();
    await page.goto(serve.url);
    await page.waitForSelector(`[data-testid="vm-list"][data-count="${VMS}"]`, { timeout: 30_000 });
    // stats and the first thumbnails flowing
    await waitFor('a thumbnail', () => page.locator('[data-testid="vm-thumb"][data-loaded="true"]').count(), 60_000, 250);
    await page.waitForTimeout(2500);

    const domRows = await page.locator('[data-testid="vm-list"] > li').count();
    const runningIds = RUNNING.map((i) => created[i]!.id);
    const runningInDom = await page.evaluate(
      (ids) => ids.filter((id) => document.querySelector(`[data-testid="vm-list"] [data-vm-id="${id}"]`)).length,
      runningIds,
    );

    // rows touched by stats pushes while nothing else happens (6 s = three pushes)
    const touched = await page.evaluate(async () => {
      const list = document.querySelector('[data-testid="vm-list"]')!;
      const touched = new Set<Element>();
      const mo = new MutationObserver((records) => {
        for (const r of records) {
          const li = (r.target instanceof Element ? r.target : r.target.parentElement)?.closest('li');
          if (li) touched.add(li);
        }
      });
      mo.observe(list, { subtree: true, childList: true, characterData: true, attributes: true });
      await new Promise((r) => setTimeout(r, 6000));
      mo.disconnect();
      return touched.size;
    });

    // scroll continuously, down then back up, recording every frame
    const frames = await page.evaluate(async (duration) => {
      const nav = document.querySelector<HTMLElement>('nav[aria-label="Virtual machines"]')!;
      const deltas: number[] = [];
      let long = 0;
      const po = new PerformanceObserver((l) => (long += l.getEntries().length));
      try {
        po.observe({ type: 'longtask', buffered: false });
      } catch {
        // no long task timing in this browser
      }
      let dir = 1;
      await new Promise<void>((resolve) => {
        let last = 0;
        let start = 0;
        const step = (t: number) => {
          if (!start) start = t;
          if (last) deltas.push(t - last);
          last = t;
          const max = nav.scrollHeight - nav.clientHeight;
          if ((dir > 0 && nav.scrollTop >= max - 1) || (dir < 0 && nav.scrollTop <= 0)) dir = -dir;
          nav.scrollTop += 24 * dir;
          if (t - start < duration) requestAnimationFrame(step);
          else resolve();
        };
        requestAnimationFrame(step);
      });
      po.disconnect();
      return { deltas, long, height: nav.scrollHeight };
    }, SCROLL_MS);

    const d = frames.deltas;
    const med = median(d);
    const p95 = percentile(d, 95);
    const fps = 1000 / (d.reduce((a, b) => a + b, 0) / d.length);
    const janky = d.filter((x) => x > 20).length;
    const what = `VM list scroll, ${VMS} VMs (${RUNNING.length} running, live stats + thumbnails)`;
    return [
      { name: `${what}: median frame`, value: ms(med), floor: '16.7 ms (60 Hz display)', target: '≤ 17.5 ms', ok: med <= 17.5 },
      { name: `${what}: p95 frame`, value: ms(p95), floor: '16.7 ms', target: '≤ 20 ms', ok: p95 <= 20 },
      {
        name: `${what}: frame rate`,
        value: `${fps.toFixed(1)} fps (${d.length} frames, ${janky} > 20 ms, ${frames.long} long tasks)`,
        floor: '60 fps',
        target: '≥ 57 fps',
        ok: fps >= 57,
      },
      {
        name: 'VM list: rows in the DOM; rows re-rendered by 3 stats pushes',
        value: `${domRows} of ${VMS}; ${touched}`,
        floor: '-',
        target: `only the running rows in the DOM (≤ ${runningInDom})`,
        ok: touched <= runningInDom,
      },
    ];
  } finally {
    if (api) {
      await stopAll(api);
      api.close();
    }
    await browser?.close();
    await serve?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
