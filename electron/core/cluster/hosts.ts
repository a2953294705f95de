// The hosts of the cluster as etcd knows them: each one's record, kept current by a watch, and
// which of them are reporting (their leased liveness key exists).
import { z } from 'zod';
import { ClusterPorts } from './config.js';

export const HostRecord = z.object({
  id: z.string(),
  name: z.string(),
  address: z.string(),
  ports: ClusterPorts,
  etcdRole: z.enum(['member', 'client', 'external']),
  joinedAt: z.number(),
});
export type HostRecord = z.infer<typeof HostRecord>;

/** What a host publishes about itself with its lease: its room for VMs. */
export const HostAlive = z.object({
  at: z.number(),
  cpus: z.number(),
  memoryBytes: z.number(),
  committedBytes: z.number(),
  vms: z.number(),
  running: z.number(),
});
export type HostAlive = z.infer<typeof HostAlive>;
