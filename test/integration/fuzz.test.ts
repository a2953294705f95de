// Fuzzes a real `corral serve` process over its WebSocket and its control socket with random
// and mutated messages (seeded: the seed is printed; CORRAL_FUZZ_SEED=<seed> replays a run),
// then checks the host is still up and answering, still holds its lock, and that the VMs
// made before the fuzzing are exactly as they were.
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE, freePort, tempDir, waitFor } from '../helpers';
import { MessageFuzzer } from '../support/fuzz-messages';
import { corral, ServeProcess } from './serve-process';
import { WsApi } from './ws-client';

const SEED = Number(process.env.CORRAL_FUZZ_SEED ?? randomInt(2 ** 31));
/** Messages per transport, and the most time each transport gets (a loaded machine sends fewer). */
const COUNT = Number(process.env.CORRAL_FUZZ_COUNT ?? 1500);
const BUDGET_MS = 90_000;
const ERROR_CODES = ['invalid-argument', 'unknown-method', 'not-found', 'conflict', 'failed', 'bad-request'];

const data = tempDir();
let serve: ServeProcess;
let before: unknown[];
const names = ['keep one', 'keep-two'];

beforeAll(async () => {
  console.log(`fuzz seed ${SEED} (replay with CORRAL_FUZZ_SEED=${SEED})`);
  serve = await ServeProcess.start(data);
  const api = await WsApi.connect(serve.port, serve.token);
  const boot = { kernel: FIXTURE.kernel, initrd: FIXTURE.initrd, append: 'console=ttyS0 quiet', memoryMiB: 128 };
  await api.call('vm.create', { name: names[0]!, ...boot, disk: { size: 16 * 1024 * 1024 } });
  await api.call('vm.create', { name: names[1]!, ...boot, cpus: 2, forwards: [{ hostPort: await freePort(), guestPort: 22 }] });
  before = await api.call('vm.list', {});
  api.close();
});

afterAll(async () => {
  await serve?.stop();
  fs.rmSync(data, { recursive: true, force: true });
});

/** Checks a reply's shape and returns it, or null for an event. */
function checkReply(raw: string): { id: number; error?: { code: string } } | null {
  const msg = JSON.parse(raw) as Record<string, unknown>;
  if ('event' in msg) return null;
  expect(Number.isSafeInteger(msg.id), raw.slice(0, 200)).toBe(true);
  if ('error' in msg) {
    const err = msg.error as { code: string; message: string };
    expect(ERROR_CODES, raw.slice(0, 200)).toContain(err.code);
    expect(typeof err.message).toBe('string');
  } else expect('result' in msg, raw.slice(0, 200)).toBe(true);
  return msg as { id: number; error?: { code: string } };
}

/** A raw WebSocket to /api that collects replies. */
async function openWs(): Promise<{ ws: WebSocket; replies: string[]; closed: Promise<number> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${serve.port}/api?token=${serve.token}`);
  const replies: string[] = [];
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('message', (d) => {
    if (checkReply(d.toString())) replies.push(d.toString());
  });
  ws.on('error', () => undefined);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, replies, closed };
}

describe('fuzzing corral serve', () => {
  it('answers a message that is not a request with bad-request, echoing a usable id', async () => {
    const { ws, replies } = await openWs();
    const cases: Array<[string, number, string]> = [
      ['null', 0, 'bad-request'],
      ['[]', 0, 'bad-request'],
      ['"vm.list"', 0, 'bad-request'],
      ['42', 0, 'bad-request'],
      ['{"id":"7","method":"vm.list"}', 0, 'bad-request'],
      ['{"id":1e400,"method":"vm.list"}', 0, 'bad-request'],
      ['{"id":7,"method":5}', 7, 'bad-request'],
      ['{"id":8,"method":"vm.list","args":null}', 8, 'bad-request'],
      ['{"id":9,"method":"vm.list","args":[1]}', 9, 'bad-request'],
      ['{"id":10,"method":"__proto__"}', 10, 'unknown-method'],
      ['{"id":11', 0, 'bad-request'],
    ];
    for (const [text, id, code] of cases) {
      replies.length = 0;
      ws.send(text);
      await waitFor(`a reply to ${text}`, () => replies.length === 1, 30_000);
      expect(JSON.parse(replies[0]!), text).toMatchObject({ id, error: { code } });
    }
    replies.length = 0;
    ws.send(Buffer.from('{"id":1,"method":"vm.list"}'), { binary: true });
    await waitFor('a reply to a binary frame', () => replies.length === 1, 30_000);
    expect(JSON.parse(replies[0]!)).toMatchObject({ id: 0, error: { code: 'bad-request', message: /binary/ } });
    ws.close();
  });

  it('survives random and mutated messages over the WebSocket', async () => {
    const fuzz = new MessageFuzzer(SEED, names);
    const deadline = Date.now() + BUDGET_MS;
    let conn = await openWs();
    let sent = 0;
    let connections = 1;
    while (sent < COUNT && Date.now() < deadline) {
      // a batch of frames, then every answer to it; bytes that are not UTF-8 end the connection
      let expected = 0;
      let broken = false;
      for (let i = 0; i < 25 && sent < COUNT; i++, sent++) {
        const f = fuzz.frame();
        if (f.kind === 'bytes') {
          conn.ws.send(f.data, { binary: false });
          broken = !isUtf8(f.data);
          if (broken) break;
        } else conn.ws.send(f.data, { binary: f.kind === 'binary' });
        expected++;
      }
      if (broken) {
        expect(await conn.closed).toBe(1007);
      } else {
        const c = conn;
        await waitFor(`${expected} replies (seed ${SEED}, after ${sent} messages)`, () => c.replies.length >= expected, 60_000);
        expect(conn.replies.length).toBe(expected);
        conn.replies.length = 0;
        if (fuzz.rand() < 0.9) continue;
      }
      conn.ws.terminate();
      conn = await openWs();
      connections++;
    }
    // bigger than the frame limit: that connection is closed, the host goes on
    conn.ws.send(fuzz.huge(3 * 1024 * 1024));
    expect(await conn.closed).toBe(1009);
    // frames that are not WebSocket frames at all, after a real upgrade
    for (let i = 0; i < 20; i++) await garbageAfterUpgrade(Buffer.from(Array.from({ length: fuzz.int(1, 4096) }, () => fuzz.int(0, 255))));
    // request targets no URL parser accepts, as a page and as an upgrade: answered, never thrown
    for (const target of ['//[', '//x:99999', 'http://[', '/%', '/api?token=%zz', '*', '/..%2f..%2fetc/passwd', '/' + 'a'.repeat(8000)]) {
      for (const upgrade of [false, true]) expect(await rawHttp(target, upgrade), target.slice(0, 40)).toMatch(/^HTTP\/1\.1 [1-5]\d\d /);
    }
    console.log(`fuzz (seed ${SEED}): ${sent} WebSocket frames over ${connections} connections`);
    expect(sent).toBeGreaterThan(Math.min(COUNT, 200));
  });

  it('survives random and mutated lines on the control socket, split anywhere', async () => {
    const fuzz = new MessageFuzzer(SEED + 1, names);
    const deadline = Date.now() + BUDGET_MS;
    let sent = 0;
    let connections = 0;
    while (sent < COUNT && Date.now() < deadline) {
      const conn = await openControl();
      connections++;
      const lines = Array.from({ length: Math.min(fuzz.int(1, 60), COUNT - sent) }, () => fuzz.line());
      sent += lines.length;
      const stream = Buffer.concat(lines.flatMap((l) => [l, Buffer.from(fuzz.rand() < 0.05 ? '\n\n' : '\n')]));
      // written in pieces cut anywhere, even inside a UTF-8 sequence
      for (let at = 0; at < stream.length;) {
        const n = fuzz.rand() < 0.3 ? fuzz.int(1, 8) : fuzz.int(1, 64 * 1024);
        conn.sock.write(stream.subarray(at, at + n));
        at += n;
        if (fuzz.rand() < 0.1) await new Promise((r) => setTimeout(r, fuzz.int(0, 5)));
      }
      await waitFor(`${lines.length} replies (seed ${SEED + 1}, after ${sent} lines)`, () => conn.replies.length >= lines.length, 60_000);
      expect(conn.replies.length).toBe(lines.length);
      // and leave with half a line unsent
      conn.sock.end(fuzz.text().slice(0, fuzz.int(0, 40)).replace(/\n/g, ''));
    }
    // one line beyond the limit: refused, that client dropped
    const conn = await openControl();
    conn.sock.write('{"id":1,"method":"vm.list","args":{"x":"' + 'y'.repeat(5 * 1024 * 1024));
    await conn.closed;
    expect(JSON.parse(conn.replies[0]!)).toMatchObject({ id: 0, error: { code: 'bad-request', message: 'message too large' } });
    console.log(`fuzz (seed ${SEED + 1}): ${sent} control-socket lines over ${connections} connections`);
  });

  it('is still up, answering, holding its lock, and the VMs made before are intact', async () => {
    expect(serve.child.exitCode).toBeNull();
    expect(serve.child.signalCode).toBeNull();
    const api = await WsApi.connect(serve.port, serve.token);
    const now = await api.call('vm.list', {});
    api.close();
    expect(now).toEqual(before);
    const cli = await corral(data, ['vm', 'list', '--json']);
    expect(cli.code).toBe(0);
    expect((JSON.parse(cli.stdout) as Array<{ name: string }>).map((v) => v.name).sort()).toEqual([...names].sort());
    const lock = JSON.parse(fs.readFileSync(path.join(data, 'host.lock'), 'utf8')) as { pid: number };
    expect(lock.pid).toBe(serve.child.pid);
    // the dispatcher itself held: the last-resort handler never had to
    expect(serve.stderr).not.toMatch(/uncaught exception|unhandled rejection/);
  });
});

function isUtf8(b: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

/** A control-socket connection collecting replies. */
async function openControl(): Promise<{ sock: net.Socket; replies: string[]; closed: Promise<void> }> {
  const sock = net.createConnection(path.join(data, 'control.sock'));
  const replies: string[] = [];
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (checkReply(line)) replies.push(line);
    }
  });
  sock.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  return { sock, replies, closed };
}

/** Sends one raw HTTP request (an upgrade to /api if asked) and resolves with the status line, or what happened instead. */
function rawHttp(target: string, upgrade: boolean): Promise<string> {
  return new Promise((resolve) => {
    const s = net.createConnection(serve.port, '127.0.0.1', () => {
      const up = upgrade
        ? 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'
        : '';
      s.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${serve.port}\r\n${up}\r\n`);
    });
    let reply = '';
    const timer = setTimeout(() => s.destroy(), 10_000);
    s.on('data', (d) => {
      reply += d.toString('latin1');
      if (reply.includes('\r\n')) s.destroy();
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(reply.split('\r\n')[0] || '(closed without an answer)');
    });
  });
}

/** Upgrades to the API's WebSocket by hand, then sends bytes that are no valid frame; resolves when the host hangs up. */
function garbageAfterUpgrade(bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = net.createConnection(serve.port, '127.0.0.1', () => {
      s.write(
        `GET /api?token=${serve.token} HTTP/1.1\r\nHost: 127.0.0.1:${serve.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    let upgraded = false;
    s.on('data', (d) => {
      if (!upgraded && d.toString('latin1').startsWith('HTTP/1.1 101')) {
        upgraded = true;
        s.write(bytes);
        setTimeout(() => s.destroy(), 200); // a valid-looking partial frame is simply waited on
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve());
  });
}
