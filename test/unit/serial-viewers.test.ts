// Serial fan-out to clients: a client that falls behind is skipped, then sent the latest
// output it missed once it has caught up, so the end of a flood always reaches it.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Session } from '../../electron/core/api/dispatcher';
import type { SerialLink } from '../../electron/core/qemu/serial-link';
import { SerialViewers } from '../../electron/core/consoles/serial-viewers';

type Sent = { vmId: string; data: string; offset: number };

/** A link's record: everything "received" so far, starting at position 1000. */
class FakeLink {
  bytes = Buffer.alloc(0);
  get offset(): number {
    return 1000 + this.bytes.length;
  }
  recentFrom(from: number): Buffer | null {
    return from < 1000 || from > this.offset ? null : this.bytes.subarray(from - 1000);
  }
  push(s: string | Buffer): { data: Buffer; offset: number } {
    const data = Buffer.from(s);
    const offset = this.offset;
    this.bytes = Buffer.concat([this.bytes, data]);
    return { data, offset };
  }
}

function client(): { session: Session; sent: Sent[]; backlog: { bytes: number } } {
  const sent: Sent[] = [];
  const backlog = { bytes: 0 };
  const session = new Session(
    'test',
    (event, payload) => event === 'serial.data' && sent.push(payload as Sent),
    () => backlog.bytes,
  );
  return { session, sent, backlog };
}

const text = (sent: Sent[]) => sent.map((s) => Buffer.from(s.data, 'base64').toString()).join('');

describe('SerialViewers', () => {
  let link: FakeLink;
  let viewers: SerialViewers;
  beforeEach(() => {
    vi.useFakeTimers();
    link = new FakeLink();
    viewers = new SerialViewers((id) => (id === 'vm1' ? (link as unknown as SerialLink) : null));
  });
  afterEach(() => vi.useRealTimers());

  const emit = (s: string | Buffer) => {
    const { data, offset } = link.push(s);
    viewers.data('vm1', data, offset);
  };

  it('sends output with its position to the clients that attached, and stops at detach', () => {
    const a = client();
    const b = client();
    viewers.add(a.session, 'vm1');
    emit('hello');
    viewers.add(b.session, 'vm1');
    emit(' world');
    expect(a.sent).toEqual([
      { vmId: 'vm1', data: Buffer.from('hello').toString('base64'), offset: 1000 },
      { vmId: 'vm1', data: Buffer.from(' world').toString('base64'), offset: 1005 },
    ]);
    expect(text(b.sent)).toBe(' world');
    viewers.remove(a.session, 'vm1');
    emit('!');
    expect(a.sent).toHaveLength(2);
    expect(text(b.sent)).toBe(' world!');
  });

  it('skips a client that falls behind, then sends it what it missed once it caught up', () => {
    const slow = client();
    const fast = client();
    viewers.add(slow.session, 'vm1');
    viewers.add(fast.session, 'vm1');
    emit('aaa');
    slow.backlog.bytes = 10 * 1024 * 1024;
    emit('bbb');
    emit('ccc');
    vi.advanceTimersByTime(100);
    expect(text(slow.sent)).toBe('aaa');
    expect(text(fast.sent)).toBe('aaabbbccc');
    slow.backlog.bytes = 0;
    vi.advanceTimersByTime(25);
    // one message with everything since the skip, at its position: nothing lost or repeated
    expect(slow.sent.at(-1)).toEqual({ vmId: 'vm1', data: Buffer.from('bbbccc').toString('base64'), offset: 1003 });
    emit('ddd');
    expect(text(slow.sent)).toBe('aaabbbcccddd');
  });

  it('sends at most the latest 256 KiB after a long stall; the position shows the gap', () => {
    const slow = client();
    viewers.add(slow.session, 'vm1');
    slow.backlog.bytes = 10 * 1024 * 1024;
    emit(Buffer.alloc(1024 * 1024, 'x'));
    emit('END');
    slow.backlog.bytes = 0;
    vi.advanceTimersByTime(25);
    const last = slow.sent.at(-1)!;
    const data = Buffer.from(last.data, 'base64');
    expect(data.length).toBe(256 * 1024);
    expect(data.subarray(-3).toString()).toBe('END');
    expect(last.offset + data.length).toBe(link.offset);
    expect(last.offset).toBeGreaterThan(1000);
  });

  it('tells every viewer when the link closes', () => {
    const a = client();
    const events: string[] = [];
    const s = new Session('t', (event) => events.push(event));
    viewers.add(a.session, 'vm1');
    viewers.add(s, 'vm1');
    viewers.closed('vm1');
    expect(events).toEqual(['serial.closed']);
  });
});
