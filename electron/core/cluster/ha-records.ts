// What HA keeps in etcd beside the ownership records: each host's HA liveness value and each
// VM's last failover with its timeline. Plain data, parsed defensively: a record written by a
// newer Corral or cut short is ignored, never trusted.

/** The value of a host's HA alive key: its shared pools, so the leader places VMs where their files are. */
export interface HaAlive {
  pools: Record<string, string>;
}

export interface TimelineStep {
  at: number;
  what: 'lease expired' | 'fenced' | 'reassigned' | 'started' | 'start failed';
  detail: string;
}

/** A VM's last failover: from a host whose lease expired to a live one, at an epoch. */
export interface Failover {
  vmId: string;
  vm: string;
  from: string;
  to: string;
  epoch: number;
  timeline: TimelineStep[];
}

export function parseAlive(text: string): HaAlive {
  try {
    const o = JSON.parse(text) as HaAlive;
    if (o && typeof o.pools === 'object' && o.pools !== null) return { pools: o.pools };
  } catch {
    // an old value (just the host id): no shared pools known
  }
  return { pools: {} };
}

export function parseFailover(text: string): Failover | null {
  try {
    const f = JSON.parse(text) as Failover;
    return typeof f.vmId === 'string' && typeof f.to === 'string' && Number.isInteger(f.epoch) && Array.isArray(f.timeline) ? f : null;
  } catch {
    return null;
  }
}

export const settled = (f: Failover) => f.timeline.some((s) => s.what === 'started');

export const stepAt = (f: Failover, what: TimelineStep['what']) => f.timeline.find((s) => s.what === what)?.at ?? 0;

/** The timeline in words, for the VM's journal. */
export const storyOf = (f: Failover) => f.timeline.map((s) => `${new Date(s.at).toISOString()} ${s.what}: ${s.detail}`).join('; ');
