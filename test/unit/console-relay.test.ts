// The pure pieces of consoles relayed between hosts: the serial frames, the stream path, the
// close reason's size, and the caller's relay: frames become the session's events, a session
// that cannot keep up stops the reading until it drained, and the end always says why.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Session } from '../../electron/core/api/dispatcher';
import { decodeFrame, encodeFrame, LineSplitter } from '../../electron/core/consoles/relay/frames';
import { SerialRelay } from '../../electron/core/consoles/relay/serial-relay';
import { MAX_BACKLOG } from '../../electron/core/consoles/serial-viewers';
import { closeReason } from '../../electron/core/consoles/vnc-proxy';
import { parseStreamPath, streamPath } from '../../electron/core/cluster/peer-stream';
import { waitFor } from '../helpers';

describe('serial frames', () => {
  it('round-trip and refuse what is not one', () => {
    const f = { t: 'data' as const, data: Buffer.from('hi').toString('base64'), offset: 42 };
    expect(decodeFrame(encodeFrame(f).trim())).toEqual(f);
    expect(decodeFrame(encodeFrame({ t: 'closed', reason: 'the VM stopped' }).trim())).toEqual({ t: 'closed', reason: 'the VM stopped' });
    for (const bad of ['', 'nope', '[]', '{"t":"data","data":"x","offset":-1}', '{"t":"data","data":1,"offset":0}', '{"t":"x"}'])
      expect(decodeFrame(bad), bad).toBeNull();
  });

  it('lines split across chunks are joined; an endless line is refused', () => {
    const s = new LineSplitter(16);
    expect(s.push('{"a":')).toEqual([]);
    expect(s.push('1}\n{"b":2}\n{')).toEqual(['{"a":1}', '{"b":2}']);
    expect(() => s.push('x'.repeat(32))).toThrow(/over 16 bytes/);
  });
});

describe('stream paths and close reasons', () => {
  it('a stream path names its kind and VM, nothing else', () => {
    expect(parseStreamPath(streamPath('serial', 'a b/c'))).toEqual({ kind: 'serial', vmId: 'a b/c' });
    expect(parseStreamPath(streamPath('vnc', 'x'))).toEqual({ kind: 'vnc', vmId: 'x' });
    for (const bad of ['/call', '/stream/shell?vm=x', '/stream/vnc?vm=x&y=1', '/stream/vnc?vm=%E0%A4%A', undefined])
      expect(parseStreamPath(bad), String(bad)).toBeNull();
  });

  it('a close reason fits a WebSocket close frame (123 bytes)', () => {
    expect(closeReason('short')).toBe('short');
    const long = closeReason(`host "${'é'.repeat(100)}" is not reporting`);
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(123);
    expect(long.endsWith('…')).toBe(true);
  });
});

function relayOn(backlog: () => number) {
  const events: Array<{ event: string; payload: Record<string, unknown> }> = [];
  const s = new Session('test', (event, payload) => events.push({ event, payload: payload as Record<string, unknown> }), backlog);
  const stream = new PassThrough();
  let done = 0;
  const relay = new SerialRelay(s, 'vm1', stream, { why: (said, err) => `why: ${said ?? err?.message ?? 'gone'}`, done: () => done++ });
  return { s, stream, relay, events, done: () => done };
}
const data = (text: string, offset: number) => encodeFrame({ t: 'data', data: Buffer.from(text).toString('base64'), offset });

describe('the caller’s serial relay', () => {
  it("passes the owner's output on with its positions and ends with the owner's reason", async () => {
    const r = relayOn(() => 0);
    r.stream.write(data('hello', 10) + data(' world', 15).slice(0, 5));
    r.stream.write(data(' world', 15).slice(5) + encodeFrame({ t: 'closed', reason: 'the VM stopped' }));
    await waitFor('the end', () => r.events.find((e) => e.event === 'serial.closed'), 2000, 5);
    expect(r.events).toEqual([
      { event: 'serial.data', payload: { vmId: 'vm1', data: Buffer.from('hello').toString('base64'), offset: 10 } },
      { event: 'serial.data', payload: { vmId: 'vm1', data: Buffer.from(' world').toString('base64'), offset: 15 } },
      { event: 'serial.closed', payload: { vmId: 'vm1', reason: 'why: the VM stopped' } },
    ]);
    expect(r.done()).toBe(1);
    expect(r.stream.destroyed).toBe(true);
  });

  it('an owner that vanishes without a word ends the console with why', async () => {
    const r = relayOn(() => 0);
    r.stream.destroy(new Error('ECONNRESET'));
    await waitFor('the end', () => r.events.find((e) => e.event === 'serial.closed'), 2000, 5);
    expect(r.events.at(-1)!.payload.reason).toBe('why: ECONNRESET');
  });

  it('a session that cannot keep up stops the reading until it has drained', async () => {
    let backlog = 0;
    const r = relayOn(() => backlog);
    backlog = MAX_BACKLOG + 1;
    r.stream.write(data('a', 0));
    await waitFor('the relay to pause', () => r.stream.isPaused(), 2000, 5);
    r.stream.write(data('b', 1));
    await new Promise((res) => setTimeout(res, 100));
    expect(r.events.length).toBe(1); // b waits in the stream (TCP's window, between hosts)
    backlog = 0;
    await waitFor('b after the drain', () => r.events.length === 2, 2000, 5);
    expect(r.stream.isPaused()).toBe(false);
  });

  it('a detach or the session closing ends it without an event', () => {
    const r = relayOn(() => 0);
    r.s.close();
    expect(r.stream.destroyed).toBe(true);
    expect(r.events).toEqual([]);
    expect(r.done()).toBe(1);
  });
});
