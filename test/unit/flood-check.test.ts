// The e2e flood check (test/e2e/flood-check.ts) against what FlowWriter really hands a slow
// terminal: it must accept every honest account of a flood and catch a wrong one.
import { describe, expect, it } from 'vitest';
import { FlowWriter } from '../../renderer/src/lib/termflow';
import { checkFlood, floodText } from '../e2e/flood-check';

const END = (tag: string) => `\r\nTPUT-${tag}-END\r\n`;
const enc = (s: string) => new TextEncoder().encode(s);

/** A terminal that parses only when told to; what it was handed, as text. */
class SlowTerm {
  written: Uint8Array[] = [];
  private callbacks: Array<() => void> = [];
  write(data: Uint8Array | string, cb?: () => void): void {
    this.written.push(typeof data === 'string' ? enc(data) : data);
    if (cb) this.callbacks.push(cb);
  }
  drain(): void {
    for (const cb of this.callbacks.splice(0)) cb();
  }
  text(): string {
    return Buffer.concat(this.written).toString('utf8');
  }
}

describe('checkFlood', () => {
  it('the lines are numbered, 80 bytes each, and join up across any cut', () => {
    expect(floodText(0, 80)).toMatch(/^0000000000 0123456789abcdefghij.{47}\r\n$/);
    expect(floodText(75, 90)).toBe(floodText(0, 200).slice(75, 165));
    expect(floodText(123_456, 7)).toBe(floodText(123_400, 100).slice(56, 63));
  });

  it('accepts a flood shown whole', () => {
    expect(checkFlood(floodText(0, 8000) + END('a'), 8000, 'a')).toEqual({ gaps: [], skipped: 0, notes: [] });
  });

  it("accounts exactly for what FlowWriter skipped, its own skips and the host's", () => {
    const t = new SlowTerm();
    const f = new FlowWriter(t, { highWater: 4096, maxQueue: 64 * 1024, keepOnSkip: 8 * 1024 });
    const bytes = 2_000_000;
    let sent = 0;
    let missed = 0;
    for (let i = 0; sent < bytes; i++) {
      const n = Math.min(bytes - sent, 1000 + ((i * 7919) % 9000));
      if (i % 97 === 50) {
        f.missed(n); // the host skipped these: they never reach the page
        missed += n;
      } else f.write(enc(floodText(sent, n)));
      sent += n;
      if (i % 20 === 0) t.drain(); // a terminal that mostly lags behind
    }
    f.write(enc(END('b')));
    while (f.queued || f.pending) t.drain();
    const seen = checkFlood(t.text(), bytes, 'b');
    expect(seen.skipped).toBe(f.skipped);
    // both kinds happened
    expect(missed).toBeGreaterThan(0);
    expect(f.skipped).toBeGreaterThan(missed);
  });

  it('catches a byte out of place, a gap without a note, a note without a gap and a missing end', () => {
    const text = floodText(0, 8000);
    const wrong = text.slice(0, 3000) + 'X' + text.slice(3001);
    expect(() => checkFlood(wrong + END('c'), 8000, 'c')).toThrow(/not the flood's bytes at flood position 3000/);
    expect(() => checkFlood(text.slice(0, 3000) + text.slice(4000) + END('c'), 8000, 'c')).toThrow(/not the flood's bytes/);
    const note = '\x18\x1b[0m\r\n\x1b[7m … 1 KB of output skipped (arriving faster than it can be shown) … \x1b[0m\r\n';
    expect(() => checkFlood(text.slice(0, 3200) + note + text.slice(3200) + END('c'), 8000, 'c')).toThrow(/without a gap/);
    expect(checkFlood(text.slice(0, 3200) + note + text.slice(4000) + END('c'), 8000, 'c')).toMatchObject({ gaps: [800], skipped: 800 });
    expect(() => checkFlood(text, 8000, 'c')).toThrow(/never came/);
    expect(() => checkFlood(text.slice(0, 7920) + END('c'), 8000, 'c')).toThrow(/stops at 7920 of 8000 bytes/);
  });
});
