// A host's room in etcd: the 5 s tick writes it only when a figure moved past its noise or a
// minute went by; a change of VMs and a new lease write it at once.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AlivePublisher, REFRESH_MS, roomMoved, type Room } from '../../electron/core/cluster/alive-publisher';
import type { HostAlive } from '../../electron/core/cluster/hosts';

const MiB = 1024 * 1024;
const idle: Room = {
  cpus: 2,
  memoryBytes: 24 * 1024 * MiB,
  committedBytes: 256 * MiB,
  vms: 2,
  running: 1,
  overcommit: 1,
  availableBytes: 20 * 1024 * MiB,
  cpuPercent: 3,
  load: { memBytes: 200 * MiB, cpu: 0.02, vms: { g: { memBytes: 200 * MiB, cpu: 0.02 } } },
  cannotRun: {},
};
const with_ = (extra: Partial<Room>): Room => ({ ...idle, ...extra });
const guest = (memBytes: number, cpu: number) => ({ memBytes, cpu, vms: { g: { memBytes, cpu } } });

describe('what moves a host room', () => {
  it('ignores noise in the figures that drift on an idle host', () => {
    expect(roomMoved(idle, idle)).toBe(false);
    expect(roomMoved(idle, with_({ availableBytes: idle.availableBytes! - 20 * MiB, cpuPercent: 9 }))).toBe(false);
    expect(roomMoved(idle, with_({ load: guest(204 * MiB, 0.05) }))).toBe(false);
  });

  it('counts every change placement or balancing decides on', () => {
    expect(roomMoved(idle, with_({ running: 2 }))).toBe(true);
    expect(roomMoved(idle, with_({ committedBytes: 512 * MiB }))).toBe(true);
    expect(roomMoved(idle, with_({ overcommit: 1.5 }))).toBe(true);
    expect(roomMoved(idle, with_({ cannotRun: { g: 'no TPM here' } }))).toBe(true);
    expect(roomMoved(idle, with_({ availableBytes: idle.availableBytes! - 200 * MiB }))).toBe(true);
    expect(roomMoved(idle, with_({ cpuPercent: 60 }))).toBe(true);
    // a guest that got busy, or grew
    expect(roomMoved(idle, with_({ load: guest(200 * MiB, 0.9) }))).toBe(true);
    expect(roomMoved(idle, with_({ load: guest(300 * MiB, 0.02) }))).toBe(true);
    // a guest more or less
    expect(roomMoved(idle, with_({ load: { memBytes: 0, cpu: 0, vms: {} } }))).toBe(true);
    expect(roomMoved(idle, with_({ load: { ...idle.load!, vms: { h: { memBytes: 200 * MiB, cpu: 0.02 } } } }))).toBe(true);
    expect(roomMoved(idle, with_({ load: undefined }))).toBe(true);
  });
});

describe('the alive publisher', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function setup() {
    let room = idle;
    const written: HostAlive[] = [];
    const p = new AlivePublisher(
      () => room,
      async (a) => void written.push(a),
      () => Date.now(),
    );
    return { p, written, set: (r: Room) => (room = r) };
  }

  it('writes an unchanged room once a minute, not every tick', async () => {
    const { p, written } = setup();
    await p.publish();
    p.start();
    await vi.advanceTimersByTimeAsync(REFRESH_MS - 1000);
    expect(written).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(5000);
    expect(written).toHaveLength(2);
    p.close();
  });

  it('writes a moved figure at the next tick, and a change of VMs at once', async () => {
    const { p, written, set } = setup();
    await p.publish();
    p.start();
    set(with_({ load: guest(200 * MiB, 1) }));
    await vi.advanceTimersByTimeAsync(5000);
    expect(written.map((w) => w.load?.cpu)).toEqual([0.02, 1]);
    // unchanged since that write: nothing more until a minute after it
    await vi.advanceTimersByTimeAsync(30_000);
    expect(written).toHaveLength(2);
    set(with_({ load: guest(200 * MiB, 1), running: 2 }));
    p.soon();
    p.soon();
    await vi.advanceTimersByTimeAsync(200);
    expect(written.map((w) => w.running)).toEqual([1, 1, 2]);
    p.close();
  });

  it('writes again after a failed write, at the next tick', async () => {
    let fail = true;
    const written: HostAlive[] = [];
    let room = idle;
    const p = new AlivePublisher(
      () => room,
      async (a) => {
        if (fail) throw new Error('etcd unreachable');
        written.push(a);
      },
    );
    p.start();
    room = with_({ running: 2 });
    await vi.advanceTimersByTimeAsync(5000);
    expect(written).toHaveLength(0);
    fail = false;
    await vi.advanceTimersByTimeAsync(5000);
    expect(written.map((w) => w.running)).toEqual([2]);
    p.close();
  });
});
