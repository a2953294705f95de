// The cluster's part of the contract: forming a cluster (init, join, leave, tokens) and its status.
import { z } from 'zod';

const Port = z.number().int().min(1, 'must be a port (1-65535)').max(65535, 'must be a port (1-65535)');

export const ClusterPortsArg = z
  .object({ peer: Port, join: Port, etcdClient: Port, etcdPeer: Port })
  .partial()
  .refine((p) => ![p.etcdClient, p.etcdPeer].some((v) => v === 2379 || v === 2380), 'must not be 2379/2380 (a system etcd uses them)');

const HostName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/, 'must be 1-63 letters, digits, dots, dashes or underscores');
const Address = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-zA-Z0-9.:-]+$/, 'must be an IP address or a host name');

export const ClusterInitArgs = z.object({
  /** This host's name in the cluster (default: the machine's hostname). */
  name: HostName.optional(),
  /** The address other hosts reach this one at (default: the first non-loopback IPv4 address). */
  address: Address.optional(),
  ports: ClusterPortsArg.default({}),
});

export const ClusterJoinArgs = ClusterInitArgs.extend({
  /** The join port of a host of the cluster, https://HOST:PORT. */
  url: z.string().url('must be a URL like https://10.0.0.1:7422'),
  token: z.string().min(1).max(200),
});

/** A one-time token and the command that uses it. */
export const JoinTicket = z.object({
  token: z.string(),
  fingerprint: z.string(),
  url: z.string(),
  command: z.string(),
  expiresAt: z.number(),
});

export const ClusterHost = z.object({
  id: z.string(),
  name: z.string(),
  address: z.string(),
  etcdRole: z.enum(['member', 'client', 'external']),
  /** Its lease is alive: it reports its VMs. */
  reporting: z.boolean(),
  self: z.boolean(),
  cpus: z.number().nullable(),
  memoryBytes: z.number().nullable(),
  committedBytes: z.number().nullable(),
  vms: z.number().nullable(),
  running: z.number().nullable(),
  /** Its admission's overcommit ratio, free memory now, and CPU busy percent (null: not published). */
  overcommit: z.number().nullable(),
  availableBytes: z.number().nullable(),
  cpuPercent: z.number().nullable(),
  /** In maintenance (host evacuate): it takes no VMs until host restore. */
  maintenance: z.boolean(),
});

export const EtcdMemberInfo = z.object({
  id: z.string(),
  name: z.string(),
  peerUrls: z.array(z.string()),
  clientUrls: z.array(z.string()),
  leader: z.boolean(),
  /** Added but not started yet (a join in progress, or a host that never came). */
  started: z.boolean(),
});

export const ClusterStatus = z.object({
  clustered: z.boolean(),
  clusterId: z.string().nullable(),
  self: z.string().nullable(),
  hosts: z.array(ClusterHost),
  members: z.array(EtcdMemberInfo),
  /** The etcd leader's member name (a host id), null when none is known. */
  leader: z.string().nullable(),
  /** Why the cluster cannot be read right now (etcd unreachable), when it cannot. */
  problem: z.string().nullable(),
});

/** Where a VM of the cluster is: its host, and whether that host reports. */
export const VmHostRef = z.object({ id: z.string(), name: z.string(), reporting: z.boolean() });

export type ClusterStatus = z.infer<typeof ClusterStatus>;
export type ClusterHost = z.infer<typeof ClusterHost>;
export type JoinTicket = z.infer<typeof JoinTicket>;
export type EtcdMemberInfo = z.infer<typeof EtcdMemberInfo>;
