// The flags every etcd member runs with: Corral's liveness writes must not grow etcd's history
// without bound (etcd 3.4 compacts nothing unless told to).
import net from 'node:net';
import { Etcd3 } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { ETCD_CALL_DEADLINE_MS, etcdCallOptions, etcdFaultHandling, etcdTuningArgs } from '../../electron/core/cluster/etcd-tuning';

/** A loopback port that refuses connections (listened on once, then closed). */
async function refusingPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** The errors of `n` calls in a row to a client of one endpoint that refuses connections. */
async function failures(n: number, faultHandling: ReturnType<typeof etcdFaultHandling>): Promise<string[]> {
  const etcd = new Etcd3({ hosts: `http://127.0.0.1:${await refusingPort()}`, dialTimeout: 2000, faultHandling });
  try {
    const out: string[] = [];
    for (let i = 0; i < n; i++)
      out.push(
        await etcd.get('k').then(
          () => 'answered',
          (e: Error) => e.message,
        ),
      );
    return out;
  } finally {
    etcd.close();
  }
}

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

  it("keeps sending to a client's only endpoint after failures, so a healed link is used at once", async () => {
    // etcd3's default: after three failures in a row, every call is refused for 5 s without trying
    const dflt = await failures(4, {});
    expect(dflt[3]).toMatch(/circuit breaker is open/);
    const one = await failures(4, etcdFaultHandling(1));
    for (const e of one) expect(e).not.toMatch(/circuit breaker/);
    expect(one[3]).toMatch(/UNAVAILABLE|ECONNREFUSED|No connection/);
    // several endpoints keep the breaker: it moves calls to the others
    expect(etcdFaultHandling(3)).toEqual({});
  }, 60_000);
});
