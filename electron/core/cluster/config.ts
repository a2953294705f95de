// This host's cluster membership, kept in the data dir (cluster/cluster.json) so that a restart of
// the host brings it back: the same id, etcd started again with its data. No file: a single host.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { clientUrl } from './etcd-member.js';
import { ExternalEtcd } from './external-etcd.js';

export const ClusterPorts = z.object({
  /** The host-to-host API (mutual TLS). */
  peer: z.number().int().min(1).max(65535),
  /** Where joining hosts present their token (server TLS only: they have no certificate yet). */
  join: z.number().int().min(1).max(65535),
  etcdClient: z.number().int().min(1).max(65535),
  etcdPeer: z.number().int().min(1).max(65535),
});
export type ClusterPorts = z.infer<typeof ClusterPorts>;

/** Defaults clear of a system etcd (2379/2380) and of corral serve (7420). */
export const DEFAULT_PORTS: ClusterPorts = { peer: 7421, join: 7422, etcdClient: 7423, etcdPeer: 7424 };

export const ClusterConfig = z.object({
  /** The CA's SHA-256 fingerprint: what a join token carries and a peer checks. */
  clusterId: z.string(),
  hostId: z.string(),
  name: z.string(),
  address: z.string(),
  ports: ClusterPorts,
  /** member: runs an etcd member here; client: uses the members'; external: the user's own etcd. */
  etcdRole: z.enum(['member', 'client', 'external']),
  /** Client URLs of etcd to dial. */
  endpoints: z.array(z.string()).min(1),
  /** For a member whose data dir is still empty: the flags it was given at join. */
  initialCluster: z.string().optional(),
  initialState: z.enum(['new', 'existing']).optional(),
  /** etcdRole external: the user's etcd and the credentials `corral serve --etcd` was given. */
  externalEtcd: ExternalEtcd.optional(),
});
export type ClusterConfig = z.infer<typeof ClusterConfig>;

/**
 * The members this host's client talks to. A host that runs a member talks to it alone: the
 * client sends each call and each stream (lease keepalives, watches) to a member picked at
 * random, and a stream on another host's member hangs, without a deadline, when that host's link
 * goes down; one host cut off then stalled the HA leases of the others, which fenced their own
 * guests. Its own member shares the host's fate: when it cannot reach the quorum, neither can
 * the host. Hosts without a member use every voting member.
 */
export function clientEndpoints(config: ClusterConfig): string[] {
  return config.etcdRole === 'member' ? [clientUrl(config.address, config.ports.etcdClient)] : config.endpoints;
}

export const clusterDir = (dataDir: string) => path.join(dataDir, 'cluster');
const fileOf = (dataDir: string) => path.join(clusterDir(dataDir), 'cluster.json');

export function readClusterConfig(dataDir: string): ClusterConfig | null {
  let text: string;
  try {
    text = fs.readFileSync(fileOf(dataDir), 'utf8');
  } catch {
    return null;
  }
  return ClusterConfig.parse(JSON.parse(text));
}

export function writeClusterConfig(dataDir: string, c: ClusterConfig): void {
  fs.mkdirSync(clusterDir(dataDir), { recursive: true, mode: 0o700 });
  const tmp = `${fileOf(dataDir)}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(c, null, 2), { mode: 0o600 });
  fs.renameSync(tmp, fileOf(dataDir));
}

/** Whether this data dir belongs to a cluster (cheap: the host asks before loading anything of it). */
export function isClustered(dataDir: string): boolean {
  return fs.existsSync(fileOf(dataDir));
}
