// Flow control between a console's byte stream and xterm.js (renderer/src/lib/termflow), and
// the key strokes typed for "Type text" (renderer/src/lib/keysyms).
import { describe, expect, it } from 'vitest';
import { strokeOf, untypeable } from '../../renderer/src/lib/keysyms';
import { FlowWriter, formatSkipped } from '../../renderer/src/lib/termflow';

/** A terminal that parses only when told to. */
class SlowTerm {
  written: Array<Uint8Array | string> = [];
  private callbacks: Array<() => void> = [];
  write(data: Uint8Array | string, cb?: () => void): void {
    this.written.push(data);
    if (cb) this.callbacks.push(cb);
  }
  /** Parses everything handed over so far. */
  drain(): void {
    for (const cb of this.callbacks.splice(0)) cb();
  }
  text(): string {
    return this.written.map((d) => (typeof d === 'string' ? d : new TextDecoder().decode(d))).join('');
  }
}

const bytes = (n: number, ch = 'x') => new TextEncoder().encode(ch.repeat(n));

describe('FlowWriter', () => {
  it('hands everything over, in order, while the terminal keeps up', () => {
    const t = new SlowTerm();
    const f = new FlowWriter(t, { highWater: 100, maxQueue: 1000 });
    for (let i = 0; i < 10; i++) {
      f.write(new TextEncoder().encode(`${i};`));
      t.drain();
    }
    expect(t.text()).toBe('0;1;2;3;4;5;6;7;8;9;');
    expect(f.pending).toBe(0);
    expect(f.skipped).toBe(0);
  });

  it('keeps at most the high-water mark in the terminal and the rest waiting', () => {
    const t = new SlowTerm();
    const f = new FlowWriter(t, { highWater: 100, maxQueue: 10_000 });
    for (let i = 0; i < 20; i++) f.write(bytes(30));
    // 4 writes of 30 reach 120 ≥ 100: the rest waits
    expect(f.pending).toBe(120);
    expect(f.queued).toBe(480);
    t.drain();
    expect(f.pending).toBeLessThanOrEqual(100 + 256 * 1024);
    while (f.queued || f.pending) t.drain();
    expect(t.text()).toBe('x'.repeat(600));
  });

  it('skips to the latest output when the backlog outgrows its bound, and says so', () => {
    const t = new SlowTerm();
    const skips: number[] = [];
    const f = new FlowWriter(t, { highWater: 10, maxQueue: 1000, keepOnSkip: 100, onSkip: (total) => skips.push(total) });
    f.write(bytes(10, 'a'));
    for (let i = 0; i < 30; i++) f.write(bytes(50, 'b'));
    f.write(new TextEncoder().encode('\nTHE END'));
    expect(skips.length).toBeGreaterThan(0);
    expect(f.queued).toBeLessThanOrEqual(1000);
    while (f.queued || f.pending) t.drain();
    const out = t.text();
    expect(out.startsWith('a'.repeat(10))).toBe(true);
    expect(out).toContain('of output skipped');
    // the note first cancels any escape sequence cut in half (CAN)
    expect(out).toContain('\x18');
    expect(out.endsWith('\nTHE END')).toBe(true);
    expect(out.length).toBeLessThan(10 + 30 * 50);
    expect(f.skipped).toBe(skips.at(-1));
  });

  it('says so, in order, when output never reached it (the host skipped a slow client)', () => {
    const t = new SlowTerm();
    const skips: number[] = [];
    const f = new FlowWriter(t, { highWater: 100, onSkip: (total, now) => skips.push(total, now) });
    f.write(bytes(5, 'a'));
    f.missed(2 * 1024 * 1024);
    f.write(bytes(5, 'b'));
    while (f.queued || f.pending) t.drain();
    const out = t.text();
    expect(out.startsWith('aaaaa\x18')).toBe(true);
    expect(out).toContain('2.0 MB of output skipped');
    expect(out.endsWith('bbbbb')).toBe(true);
    expect(skips).toEqual([2 * 1024 * 1024, 2 * 1024 * 1024]);
    expect(f.skipped).toBe(2 * 1024 * 1024);
  });

  it('counts only output as skipped when a skip drops the note of an earlier one, and says both', () => {
    const t = new SlowTerm();
    const f = new FlowWriter(t, { highWater: 10, maxQueue: 1000, keepOnSkip: 100 });
    f.write(bytes(10, 'a'));
    // the host skipped 500 bytes while the terminal was busy: the note waits in the backlog…
    f.missed(500);
    // …and goes with the output behind it when the backlog overflows
    for (let i = 0; i < 30; i++) f.write(bytes(50, 'b'));
    while (f.queued || f.pending) t.drain();
    const out = t.text();
    // eslint-disable-next-line no-control-regex
    const shown = out.replace(/\x18.*? of output skipped .*?\r\n/gs, '').split('b').length - 1;
    expect(f.skipped).toBe(500 + 30 * 50 - shown);
    const notes = [...out.matchAll(/… (.+?) of output skipped/g)].map((m) => m[1]);
    expect(notes).toEqual([formatSkipped(f.skipped)]);
  });

  it('hands xterm a large chunk in pieces (it parses each write in one go, without yielding)', () => {
    const t = new SlowTerm();
    const f = new FlowWriter(t, { highWater: 8 * 1024 * 1024 });
    f.write(bytes(1024 * 1024));
    expect(t.written.length).toBe(16);
    expect(Math.max(...t.written.map((w) => w.length))).toBe(64 * 1024);
    t.drain();
    expect(f.pending).toBe(0);
  });

  it('drops nothing more once closed', () => {
    const t = new SlowTerm();
    const f = new FlowWriter(t, { highWater: 10 });
    f.write(bytes(20));
    f.close();
    f.write(bytes(20));
    t.drain();
    expect(t.text()).toBe('x'.repeat(20));
  });
});

describe('typing text as a US keyboard', () => {
  it('presses Shift for shifted characters and knows the physical key', () => {
    expect(strokeOf('a')).toEqual({ key: { keysym: 0x61, code: 'KeyA' }, shift: false });
    expect(strokeOf('A')).toEqual({ key: { keysym: 0x41, code: 'KeyA' }, shift: true });
    expect(strokeOf('$')).toEqual({ key: { keysym: 0x24, code: 'Digit4' }, shift: true });
    expect(strokeOf('>')).toMatchObject({ key: { code: 'Period' }, shift: true });
    expect(strokeOf('\n')).toMatchObject({ key: { code: 'Enter' }, shift: false });
  });

  it('names the characters it cannot type', () => {
    expect(untypeable('echo "héllo wörld" | tr a-z A-Z\r\n')).toEqual(['é', 'ö']);
    expect(untypeable('plain ASCII ~!@#$%^&*()_+{}|:"<>?')).toEqual([]);
  });
});
