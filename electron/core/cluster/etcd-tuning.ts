// How the cluster's etcd members run: sized for a few hosts on one LAN and the HA lease (TTL
// 10 s) rather than etcd's default heartbeat of 100 ms.
// An idle member's CPU is mostly wake-ups: raft ticks and heartbeats, the backend's commit
// timer, and the Go scheduler spinning between its threads.
//
// Failover: the election timeout stays etcd's 1 s. When the etcd leader's host dies, a new
// leader comes after one to two election timeouts and gives every lease its full TTL plus one
// election timeout again, so a longer timeout would delay the failover of that host's guests.
// The fence margin is untouched: a leader change only ever makes a lease live longer.
import { noop } from 'cockatiel';

/** Raft heartbeat: a LAN round trip is well under a millisecond; etcd wants five per election timeout. */
export const ETCD_HEARTBEAT_MS = 200;
/** etcd's default. */
export const ETCD_ELECTION_MS = 1000;

/**
 * History etcd keeps. It compacts nothing by default, and each host rewrites its liveness every
 * 5 s: a three-host cluster would fill etcd's 2 GiB quota within a few months and then refuse
 * every write. A day of history bounds that; a host away longer than a day comes back to
 * watches etcd cancels (the revision they resume from is gone), and restarting its `corral
 * serve` makes them anew.
 */
export const ETCD_HISTORY = '24h';

/** A unary call unanswered this long has failed: the client tries it on another member. */
export const ETCD_CALL_DEADLINE_MS = 5000;

/**
 * Call options for every Corral etcd client. A unary call has no deadline by default, and one
 * sent to a member whose link went down (no reset, packets dropped) waits for TCP to give up,
 * many minutes: a host cut off that way held its lease grants and reads on the member it could
 * no longer reach while the other two answered. Streams (watches, keepalives) are left alone:
 * they live long by design, and the lease keeper bounds its own.
 */
export function etcdCallOptions(ctx: { isStream: boolean }): { deadline?: number } {
  return ctx.isStream ? {} : { deadline: Date.now() + ETCD_CALL_DEADLINE_MS };
}

/**
 * Fault handling for a client of `hosts` endpoints. etcd3 puts a circuit breaker on each: after
 * three failed calls in a row it refuses every call to that endpoint for 5 s, so that calls go to
 * the others. A client of a single endpoint (a host's own member) has no others: the breaker,
 * opened while the host's link was down, kept it off its member for 5 s more once the link
 * healed, and its fresh HA lease lapsed again. So one endpoint gets no breaker; the call
 * deadline still bounds every call.
 */
export function etcdFaultHandling(hosts: number): { host?: () => typeof noop } {
  return hosts === 1 ? { host: () => noop } : {};
}

/** The flags every member gets besides its names, URLs and certificates. */
export function etcdTuningArgs(): string[] {
  // prettier-ignore
  return [
    '--heartbeat-interval', String(ETCD_HEARTBEAT_MS),
    '--election-timeout', String(ETCD_ELECTION_MS),
    '--auto-compaction-mode', 'periodic',
    '--auto-compaction-retention', ETCD_HISTORY,
    // A member cut off keeps starting elections at ever higher terms; without a pre-vote, the
    // first of its votes to get through when the link heals makes the working leader step down,
    // and every host's lease keepalives go unanswered until a new one is elected (etcd 3.5
    // turns this on by default).
    '--pre-vote',
  ];
}

/**
 * The member's environment: one OS thread runs Go code. An idle etcd on more spins its
 * scheduler's idle threads at every wake-up; a homelab's few keys need no parallelism.
 */
export function etcdEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...base, GOMAXPROCS: '1' };
}
