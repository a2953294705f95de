// The host's serial link against a socket that behaves like QEMU's chardev: bytes trickle in
// one per write, and the log file holds everything that was sent, plus what came before.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { setImmediate as tick } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { readSerialLog, SerialLink } from '../../electron/core/qemu/serial-link';
import { tempDir, waitFor } from '../helpers';

let server: net.Server | null = null;
let link: SerialLink | null = null;
afterEach(() => {
  link?.close();
  server?.close();
});

/** A fake chardev: what the test writes goes to the client and, as QEMU does, to the log. */
async function fakeChardev(earlier: string): Promise<{ sock: string; log: string; send: (s: string) => void; peer: Promise<net.Socket> }> {
  const dir = tempDir();
  const sock = path.join(dir, 'serial.sock');
  const log = path.join(dir, 'serial.log');
  fs.writeFileSync(log, earlier);
  let accept!: (c: net.Socket) => void;
  const peer = new Promise<net.Socket>((r) => (accept = r));
  server = net.createServer((c) => accept(c));
  await new Promise<void>((r) => server!.listen(sock, r));
  return {
    sock,
    log,
    peer,
    send: (s: string) => {
      void peer.then((c) => {
        c.write(s);
        fs.appendFileSync(log, s);
      });
    },
  };
}

/** waitFor without timers (they may be frozen): polls on setImmediate. */
async function waitForReal(fn: () => boolean): Promise<void> {
  for (let i = 0; i < 100_000; i++) {
    if (fn()) return;
    await tick();
  }
  throw new Error('condition not met');
}

describe('SerialLink', () => {
  it('places the live stream in the log: offsets continue the log exactly', async () => {
    const dev = await fakeChardev('old boot output\n');
    link = new SerialLink(dev.sock);
    await link.connect();
    const peer = await dev.peer;
    // printed between connecting and begin(): held, then placed before what follows
    peer.write('ab');
    fs.appendFileSync(dev.log, 'ab');
    await waitFor('the held bytes', () => link!.held === 2);
    const got: Array<{ data: string; offset: number }> = [];
    link.subscribe((d, offset) => got.push({ data: d.toString(), offset }));
    link.begin(fs.statSync(dev.log).size);
    expect(got).toEqual([{ data: 'ab', offset: 16 }]);

    dev.send('cdef');
    await waitFor('more output', () => link!.offset === 22);
    const log = fs.readFileSync(dev.log, 'latin1');
    for (const g of got) expect(log.slice(g.offset, g.offset + g.data.length)).toBe(g.data);
  });

  it('reads a trickle of single bytes in a few batches, losing none', async () => {
    const dev = await fakeChardev('');
    link = new SerialLink(dev.sock);
    await link.connect();
    link.begin(0);
    const chunks: Buffer[] = [];
    link.subscribe((d) => chunks.push(d));
    const peer = await dev.peer;
    const text = Array.from({ length: 2000 }, (_, i) => String.fromCharCode(33 + (i % 90))).join('');
    for (const ch of text) {
      peer.write(ch); // one write per byte, as the emulated UART does
      await new Promise((r) => setImmediate(r));
    }
    await waitFor('all bytes', () => link!.offset === text.length, 5000);
    expect(Buffer.concat(chunks).toString()).toBe(text);
    // forwarded as read, this would be about one message per byte
    expect(chunks.length).toBeLessThan(text.length / 10);
  });

  it('sends the first bytes after a quiet spell at once, and what follows after the pause', async () => {
    const dev = await fakeChardev('');
    link = new SerialLink(dev.sock);
    await link.connect();
    link.begin(0);
    const peer = await dev.peer;
    const got: string[] = [];
    link.subscribe((d) => got.push(d.toString()));
    // the pause is a timer: with timers frozen, only the first read can happen
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      peer.write('x');
      await waitForReal(() => got.length === 1);
      peer.write('y');
      peer.write('z');
      await sleep(100);
      expect(got).toEqual(['x']);
      vi.advanceTimersByTime(10);
      await waitForReal(() => got.length === 2);
      expect(got).toEqual(['x', 'yz']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('sends a flood in messages of at most 256 KiB, at their positions', async () => {
    const dev = await fakeChardev('');
    link = new SerialLink(dev.sock);
    await link.connect();
    const peer = await dev.peer;
    peer.write(Buffer.alloc(600 * 1024, 'z')); // held until begin(), then placed as one batch
    await waitFor('the bytes', () => link!.held === 600 * 1024);
    const got: Array<{ n: number; offset: number }> = [];
    link.subscribe((d, offset) => got.push({ n: d.length, offset }));
    link.begin(600 * 1024);
    expect(got).toEqual([
      { n: 256 * 1024, offset: 0 },
      { n: 256 * 1024, offset: 256 * 1024 },
      { n: 88 * 1024, offset: 512 * 1024 },
    ]);
  });

  it('serial.log joins the file before the link and what the link received, whatever the file has since', async () => {
    const dev = await fakeChardev('0123456789');
    link = new SerialLink(dev.sock);
    await link.connect();
    link.begin(10);
    const peer = await dev.peer;
    peer.write('ABC');
    // QEMU logs a byte twice when its socket write is retried, and the file may lag a write
    fs.appendFileSync(dev.log, 'AA');
    await waitFor('the bytes', () => link!.offset === 13);
    const r = readSerialLog(dev.log, 1000, link);
    expect(r).toEqual({ data: Buffer.from('0123456789ABC'), size: 13 });
    // a tail shorter than the log keeps its end
    expect(readSerialLog(dev.log, 4, link)).toEqual({ data: Buffer.from('9ABC'), size: 13 });
    // without a link (VM stopped) it is the file as it is
    expect(readSerialLog(dev.log, 1000, null)).toEqual({ data: Buffer.from('0123456789AA'), size: 12 });
  });
});
