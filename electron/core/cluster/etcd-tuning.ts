// How the cluster's etcd members run: sized for a few hosts on one LAN and the HA lease (TTL
// 10 s) rather than etcd's defaults (a heartbeat every 100 ms, an election after 1 s).
// An idle member's CPU is mostly wake-ups: raft ticks and heartbeats, the backend's commit
// timer, and the Go scheduler spinning between its threads.
//
// Failover: when the etcd leader's host dies, a new leader comes after one to two election
// timeouts and gives every lease its full TTL plus one election timeout again, so the dead
// host's HA lease expires about 2–3 election timeouts + TTL after the death. 1.5 s (etcd's
// default is 1 s) keeps failover within its target. The fence margin is untouched: a leader
// change only ever makes a lease live longer, never shorter, so the fencer still acts first.

/** Raft heartbeat: a LAN round trip is well under a millisecond. */
export const ETCD_HEARTBEAT_MS = 250;
/** Six missed heartbeats (etcd wants at least five); longer than etcd's 1 s, so no more elections. */
export const ETCD_ELECTION_MS = 1500;

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
