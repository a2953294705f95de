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

interface WriteRecord {
  chunks: Uint8Array[];
  /** The largest single write (bytes). */
  largest: number;
  keep: boolean;
}

/**
 * From now on, notes what the page hands to a console's xterm (found by test id): every byte
 * when `keep` (for takeWrites), else only the size of the largest write.
 */
export async function recordWrites(page: Page, testid: string, keep = true): Promise<void> {
  await page.evaluate(
    ([id, k]) => {
      type Write = (data: Uint8Array | string, callback?: () => void) => void;
      const els = [...document.querySelectorAll(`[data-testid="${id}"]`)] as Array<HTMLElement & { xterm: { write: Write } }>;
      const t = (els.find((e) => e.offsetParent !== null) ?? els[0])!.xterm as { write: Write; __write?: Write };
      const w = window as unknown as { __writes?: WriteRecord };
      w.__writes = { chunks: [], largest: 0, keep: k };
      if (t.__write) return; // already wrapped
      const write = (t.__write = t.write.bind(t));
      t.write = (data, callback) => {
        const rec = w.__writes;
        if (rec) {
          const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
          rec.largest = Math.max(rec.largest, bytes.length);
          if (rec.keep) rec.chunks.push(bytes.slice());
        }
        write(data, callback);
      };
    },
    [testid, keep] as const,
  );
}

/** Stops recording (recordWrites); what was handed to xterm, as text (UTF-8), and the largest write. */
export async function takeWrites(page: Page): Promise<{ text: string; largest: number }> {
  const r = await page.evaluate(() => {
    const w = window as unknown as { __writes?: WriteRecord };
    const rec = w.__writes;
    w.__writes = undefined;
    if (!rec) return null;
    let n = 0;
    for (const c of rec.chunks) n += c.length;
    const all = new Uint8Array(n);
    let o = 0;
    for (const c of rec.chunks) {
      all.set(c, o);
      o += c.length;
    }
    // base64 in pieces of a multiple of 3 bytes, so they join up
    const parts: string[] = [];
    for (let i = 0; i < all.length; i += 30_000) parts.push(btoa(String.fromCharCode(...all.subarray(i, i + 30_000))));
    return { b64: parts.join(''), largest: rec.largest };
  });
  if (!r) throw new Error('takeWrites: nothing was being recorded (recordWrites first)');
  return { text: Buffer.from(r.b64, 'base64').toString('utf8'), largest: r.largest };
}
