// How the cluster's etcd members run: sized for a few hosts on one LAN and the HA lease (TTL
// 10 s) rather than etcd's default heartbeat of 100 ms.
// An idle member's CPU is mostly wake-ups: raft ticks and heartbeats, the backend's commit
// timer, and the Go scheduler spinning between its threads.
//
// Failover: the election timeout stays etcd's 1 s. When the etcd leader's host dies, a new
// leader comes after one to two election timeouts and gives every lease its full TTL plus one
// election timeout again, so a longer timeout would delay the failover of that host's guests.
// The fence margin is untouched: a leader change only ever makes a lease live longer.

/** Raft heartbeat: a LAN round trip is well under a millisecond; etcd wants five per election timeout. */
export const ETCD_HEARTBEAT_MS = 200;
/** etcd's default. */
export const ETCD_ELECTION_MS = 1000;

/** The flags every member gets besides its names, URLs and certificates. */
export function etcdTuningArgs(): string[] {
  // prettier-ignore
  return [
    '--heartbeat-interval', String(ETCD_HEARTBEAT_MS),
    '--election-timeout', String(ETCD_ELECTION_MS),
  ];
}

/**
 * The member's environment: one OS thread runs Go code. An idle etcd on more spins its
 * scheduler's idle threads at every wake-up; a homelab's few keys need no parallelism.
 */
export function etcdEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...base, GOMAXPROCS: '1' };
}
