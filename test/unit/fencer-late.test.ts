// The fencer and an HA QEMU it hears of only after its fence: a start that was under way on the
// host when the deadline passed. That QEMU runs on a fenced host whose guests another host is
// about to start, so the fencer kills it at once; once the host is back with a fresh lease, a
// late message kills nothing.
import { describe, expect, it } from 'vitest';
import { Fencer } from '../../electron/core/ha/fencer/fencer';
import type { FenceRecord, Guard } from '../../electron/core/ha/fencer/protocol';

function setup() {
  let now = 0;
  const timers: Array<{ at: number; fn: () => void }> = [];
  const alive = new Map<number, string>(); // pid → start time
  const killed: number[] = [];
  let record: FenceRecord | null = null;
  const lines: string[] = [];
  const fencer = new Fencer({
    nowMs: () => now,
    after: (ms, fn) => {
      const t = { at: now + ms, fn };
      timers.push(t);
      return () => void timers.splice(timers.indexOf(t) >>> 0, 1);
    },
    startTime: (pid) => alive.get(pid) ?? null,
    kill: (pid) => {
      killed.push(pid);
      alive.delete(pid);
    },
    record: (r) => void (record = r),
    previous: () => record,
    clearRecord: () => void (record = null),
    log: (l) => void lines.push(l),
  });
  const advance = (ms: number) => {
    now += ms;
    for (const t of timers.filter((x) => x.at <= now)) {
      timers.splice(timers.indexOf(t), 1);
      t.fn();
    }
  };
  const qemu = (pid: number): Guard => {
    alive.set(pid, `st${pid}`);
    return { vm: `vm${pid}`, pid, startTime: `st${pid}` };
  };
  return { fencer, advance, qemu, killed, lines, record: () => record };
}

describe('the fencer and a QEMU reported after its fence', () => {
  it('kills it at once, and adds it to the record the host reads', () => {
    const { fencer, advance, qemu, killed, lines, record } = setup();
    const early = qemu(10);
    fencer.handle({ op: 'arm', deadlineMs: 7000, guards: [early] });
    advance(7000);
    expect(killed).toEqual([10]);
    // the host finishes a start it began before the deadline, and tells of it with that deadline
    const late = qemu(11);
    fencer.handle({ op: 'arm', deadlineMs: 7000, guards: [early, late] });
    expect(killed).toEqual([10, 11]);
    expect(record()!.killed.map((g) => g.pid)).toEqual([10, 11]);
    expect(lines.at(-1)).toMatch(/FENCED late: killed vm11 \(pid 11\)/);
  });

  it('writes nothing more when a late message names only what the fence killed', () => {
    const { fencer, advance, qemu, killed, lines, record } = setup();
    const g = qemu(20);
    fencer.handle({ op: 'arm', deadlineMs: 5000, guards: [g] });
    advance(5000);
    const before = record();
    fencer.handle({ op: 'arm', deadlineMs: 5000, guards: [g] });
    expect(killed).toEqual([20]);
    expect(record()).toBe(before);
    expect(lines).toHaveLength(1);
  });

  it('kills nothing on a late message once the host cleared the fence with a fresh lease', () => {
    const { fencer, advance, qemu, killed } = setup();
    fencer.handle({ op: 'arm', deadlineMs: 5000, guards: [] });
    advance(5000);
    fencer.handle({ op: 'clear-fence' });
    const running = qemu(30);
    fencer.handle({ op: 'arm', deadlineMs: 5000, guards: [running] });
    expect(killed).toEqual([]);
    // the fresh lease's deadlines guard it as usual
    fencer.handle({ op: 'arm', deadlineMs: 12_000, guards: [running] });
    advance(7000);
    expect(killed).toEqual([30]);
  });
});
