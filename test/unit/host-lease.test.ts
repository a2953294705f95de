// The host's cluster lease while etcd is out of reach: a new lease after a pause that doubles,
// not a tight loop of refused grants; back in reach, everything is published again and the
// pause starts over.
import { EventEmitter } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HostLease } from '../../electron/core/cluster/host-lease';

/** An etcd whose grants are refused at once while `up` is false (as behind an open circuit breaker). */
function fakeEtcd(state: { up: boolean; grants: number }) {
  return {
    lease: () => {
      state.grants++;
      const refused = new Error('Execution prevented because the circuit breaker is open');
      const granted = state.up ? Promise.resolve('1') : Promise.reject(refused);
      granted.catch(() => undefined);
      const l = Object.assign(new EventEmitter(), { grant: () => granted, release: () => undefined, revoke: async () => undefined });
      if (!state.up) setImmediate(() => l.emit('lost', refused));
      return l;
    },
  } as unknown as Etcd3;
}

describe('the host lease', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'setImmediate', 'clearTimeout'] }));
  afterEach(() => vi.useRealTimers());

  it('waits longer between new leases while etcd refuses them, and republishes once one takes', async () => {
    const state = { up: false, grants: 0 };
    const lines: string[] = [];
    let republished = 0;
    const lease = new HostLease(
      fakeEtcd(state),
      async () => void republished++,
      (l) => lines.push(l),
    );
    // 20 s out of reach: pauses of 0.25, 0.5, 1, 2, 4, 5, 5… s, not thousands of grants
    await vi.advanceTimersByTimeAsync(20_000);
    expect(state.grants).toBeGreaterThanOrEqual(6);
    expect(state.grants).toBeLessThanOrEqual(9);
    expect(lines.at(-1)).toMatch(
      /^cluster: lease lost \(Execution prevented because the circuit breaker is open\); publishing again with a new one in 5000 ms$/,
    );
    // back in reach: the next lease holds and everything is put under it
    state.up = true;
    await vi.advanceTimersByTimeAsync(5000);
    const grants = state.grants;
    expect(republished).toBeGreaterThanOrEqual(1);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(state.grants).toBe(grants);
    // lost again later: the pause starts over from the shortest
    state.up = false;
    lease.current().emit('lost', new Error('lease expired'));
    expect(lines.at(-1)).toMatch(/in 250 ms$/);
    lease.close();
  });
});
