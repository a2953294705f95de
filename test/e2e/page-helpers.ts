// Looking into the console page from e2e tests: xterm buffers, page responsiveness, JS heap.
import { setTimeout as sleep } from 'node:timers/promises';
import type { CDPSession, Page } from 'playwright-core';

/** The scrollback of an xterm console (serial or terminal), found by test id. */
export function termText(page: Page, testid: string): Promise<string> {
  return page.evaluate((id) => {
    const els = [...document.querySelectorAll(`[data-testid="${id}"]`)] as Array<HTMLElement & { bufferText?: string }>;
    // the one on screen (terminal tabs that are hidden keep theirs)
    const el = els.find((e) => e.offsetParent !== null) ?? els[0];
    return el?.bufferText ?? '';
  }, testid);
}

/** The last lines of an xterm console: cheap enough to poll while it floods. */
export function termTail(page: Page, testid: string, lines = 60): Promise<string> {
  return page.evaluate(
    ([id, n]) => {
      const els = [...document.querySelectorAll(`[data-testid="${id}"]`)] as Array<
        HTMLElement & { xterm?: import('@xterm/xterm').Terminal }
      >;
      const b = (els.find((e) => e.offsetParent !== null) ?? els[0])?.xterm?.buffer.active;
      if (!b) return '';
      const out: string[] = [];
      for (let i = Math.max(0, b.length - n); i < b.length; i++) out.push(b.getLine(i)?.translateToString(true) ?? '');
      return out.join('\n');
    },
    [testid, lines] as const,
  );
}

export async function heapMB(cdp: CDPSession): Promise<number> {
  const { metrics } = await cdp.send('Performance.getMetrics');
  return (metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0) / 1024 / 1024;
}

/**
 * While `until` is false: page round trips (ms) and JS heap (MB) every ~150 ms. A frozen page
 * shows as a long round trip.
 */
export async function watchPage(
  page: Page,
  cdp: CDPSession,
  until: () => Promise<boolean>,
  timeoutMs: number,
): Promise<{ rtt: number[]; heap: number[] }> {
  const rtt: number[] = [];
  const heap: number[] = [];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const t0 = performance.now();
    await page.evaluate(() => document.body.childElementCount);
    rtt.push(performance.now() - t0);
    heap.push(await heapMB(cdp));
    if (await until()) return { rtt, heap };
    await sleep(150);
  }
  throw new Error(`still flooding after ${timeoutMs} ms`);
}
