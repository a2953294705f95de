// Changes to a VM's failover record after the leader wrote it: the target appends "started", the
// host that was fenced, once back, puts its fencer's real fence time in place of the leader's
// estimate. Two hosts may write one record at about the same time, so each change is a
// compare-and-swap on the value read: neither ever overwrites the other's step with a stale copy.
import type { Etcd3 } from 'etcd3';
import type { FenceRecord } from '../ha/fencer/protocol.js';
import { parseFailover, type Failover, type TimelineStep } from './ha-records.js';
import { keys } from './keys.js';

const TRIES = 5;

/**
 * Applies `change` to the record of `vmId` at `epoch` (null: leave it) until it lands; returns
 * the record written, or null when there was nothing to change (another epoch, or `change` said so).
 */
export async function updateFailover(
  etcd: Etcd3,
  vmId: string,
  epoch: number,
  change: (f: Failover) => Failover | null,
): Promise<Failover | null> {
  const key = keys.haFailover(vmId);
  for (let i = 0; i < TRIES; i++) {
    const raw = await etcd.get(key).string();
    const f = raw === null ? null : parseFailover(raw);
    if (!f || f.epoch !== epoch) return null;
    const next = change(f);
    if (!next) return null;
    const res = await etcd
      .if(key, 'Value', '==', raw!)
      .then(etcd.put(key).value(JSON.stringify(next)))
      .commit();
    if (res.succeeded) return next;
  }
  throw new Error(`the failover record of ${vmId} kept changing under ${TRIES} tries`);
}

export const appendStep = (step: TimelineStep) => (f: Failover) => ({ ...f, timeline: [...f.timeline, step] });

/** Words that mark a fence step as the host's own report rather than the leader's estimate. */
export const REPORTED = 'reported by';

export const fenceReported = (f: Failover) => f.timeline.some((s) => s.what === 'fenced' && s.detail.includes(REPORTED));

/**
 * The fenced host's own record in place of the estimate: when its fencer killed the VM (or found
 * it gone), and how long before the lease expired at the cluster. Null when the record does not
 * speak of this VM (a fence before another failover) or the report is in already.
 */
export function withReportedFence(f: Failover, rec: FenceRecord, hostName: string): Failover | null {
  if (fenceReported(f)) return null;
  const killed = rec.killed.find((g) => g.vm === f.vm);
  const gone = rec.gone.find((g) => g.vm === f.vm);
  if (!killed && !gone) return null;
  const expired = f.timeline.find((s) => s.what === 'lease expired')?.at;
  const before =
    expired === undefined ? '' : `, ${((expired - (killed?.at ?? rec.at)) / 1000).toFixed(1)} s before its lease expired at the cluster`;
  const what = killed ? `${hostName}'s fencer killed it (pid ${killed.pid})` : `${hostName}'s fencer found it gone already`;
  const at = killed?.at ?? rec.at;
  const step: TimelineStep = { at, what: 'fenced', detail: `${what}${before} (${REPORTED} ${hostName} when it came back)` };
  return { ...f, timeline: f.timeline.map((s) => (s.what === 'fenced' ? step : s)) };
}
