// A migration that stops moving: the source's watch on the figures it polls, and its lease on
// the target (touches the target must answer). The link cut between real hosts is in
// cluster-move.test.ts.
import { describe, expect, it } from 'vitest';
import { StallWatch, STALL_MS } from '../../electron/core/vms/migration/stall';
import { TargetLease, TOUCH_EVERY_MS, within } from '../../electron/core/vms/migration/lease';
import type { PeerClient } from '../../electron/core/vms/migration/peer';

describe('the stall watch', () => {
  it('gives up once no figure has changed for the limit, and any change starts it again', () => {
    let now = 0;
    const w = new StallWatch('the migration stream', STALL_MS, () => now);
    w.check(100, 5);
    now += STALL_MS - 1;
    w.check(100, 5);
    now += 2;
    expect(() => w.check(100, 5)).toThrow(/the migration stream made no progress for 30 s: the link to the target or the target failed/);
    // a disk offset moving counts as much as RAM sent
    w.check(100, 6);
    now += STALL_MS - 1;
    expect(() => w.check(100, 6)).not.toThrow();
  });
});

/** A peer whose touches are answered while `up` says so, and hang otherwise (a cut link). */
function peer(up: { on: boolean }): PeerClient & { touches: number } {
  const p = {
    address: '10.0.0.2',
    touches: 0,
    call: ((method: string) => {
      expect(method).toBe('migration.touchIncoming');
      p.touches++;
      return up.on ? Promise.resolve({ ok: true }) : new Promise(() => undefined);
    }) as PeerClient['call'],
    close: () => undefined,
  };
  return p;
}

describe('the lease on the target', () => {
  it('touches the target while it answers, and says it is lost once it has not answered for the limit', async () => {
    const up = { on: true };
    const p = peer(up);
    let now = Date.now();
    const lease = new TargetLease(p, 'vm-1', 3 * TOUCH_EVERY_MS, () => now);
    const tick = async () => {
      now += TOUCH_EVERY_MS;
      // the interval's touch, run by hand on the fake clock
      await (lease as unknown as { touch(): Promise<void> }).touch();
    };
    lease.start();
    try {
      await tick();
      await tick();
      expect(p.touches).toBe(2);
      expect(() => lease.check()).not.toThrow();
      up.on = false;
      // unanswered touches hang: each is given up after its own timeout, not awaited here
      now += 3 * TOUCH_EVERY_MS;
      expect(() => lease.check()).toThrow(/the target host has not answered for 15 s: the link to it or the host failed/);
      up.on = true;
      await tick();
      expect(() => lease.check()).not.toThrow();
      expect(lease.signal.aborted).toBe(false);
    } finally {
      lease.stop();
    }
  });

  it('aborts its signal when touches go unanswered for the limit, and fails a call guarded by it', async () => {
    let now = Date.now();
    const cut: PeerClient = {
      address: '10.0.0.2',
      call: (() => Promise.reject(new Error('cut'))) as PeerClient['call'],
      close: () => undefined,
    };
    const lease = new TargetLease(cut, 'vm-1', 10_000, () => now);
    lease.start();
    const touch = () => (lease as unknown as { touch(): Promise<void> }).touch();
    const finish = lease.guard(new Promise(() => undefined));
    try {
      now += 5000;
      await touch();
      expect(lease.signal.aborted).toBe(false);
      now += 5000;
      await touch();
      expect(lease.signal.aborted).toBe(true);
      await expect(finish).rejects.toThrow(/the target host has not answered for 10 s/);
      await expect(lease.guard(Promise.resolve(1))).rejects.toThrow(/has not answered/);
    } finally {
      lease.stop();
    }
  });

  it('within() rejects a call that does not answer in time', async () => {
    await expect(within(20, new Promise(() => undefined))).rejects.toThrow(/no answer in 0 s/);
    await expect(within(1000, Promise.resolve(7))).resolves.toBe(7);
  });
});
