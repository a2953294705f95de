// The flags every etcd member runs with: Corral's liveness writes must not grow etcd's history
// without bound (etcd 3.4 compacts nothing unless told to).
import { describe, expect, it } from 'vitest';
import { ETCD_CALL_DEADLINE_MS, etcdCallOptions, etcdTuningArgs } from '../../electron/core/cluster/etcd-tuning';

describe('etcd tuning', () => {
  it('compacts history older than a day, and keeps the heartbeat within the election timeout', () => {
    const args = etcdTuningArgs();
    const flag = (name: string) => args[args.indexOf(name) + 1];
    expect(flag('--auto-compaction-mode')).toBe('periodic');
    expect(flag('--auto-compaction-retention')).toBe('24h');
    // etcd refuses an election timeout under five heartbeats
    expect(Number(flag('--election-timeout'))).toBeGreaterThanOrEqual(5 * Number(flag('--heartbeat-interval')));
  });

  it('runs a pre-vote, so that a member coming back from a partition does not depose the leader', () => {
    expect(etcdTuningArgs()).toContain('--pre-vote');
  });

  it('gives a unary call a deadline, so that one sent to an unreachable member fails over', () => {
    const before = Date.now();
    const unary = etcdCallOptions({ isStream: false }).deadline!;
    expect(unary).toBeGreaterThanOrEqual(before + ETCD_CALL_DEADLINE_MS);
    expect(unary).toBeLessThanOrEqual(Date.now() + ETCD_CALL_DEADLINE_MS);
    expect(etcdCallOptions({ isStream: true })).toEqual({});
  });
});
