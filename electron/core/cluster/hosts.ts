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
  // optional: a host of an older version publishes none of these
  /** Memory overcommit ratio of its admission (RAM × this may be committed). */
  overcommit: z.number().optional(),
  /** MemAvailable: what the host's kernel has free now. */
  availableBytes: z.number().optional(),
  /** Busy share of all its cores over the 5 s before this was written, in percent. */
  cpuPercent: z.number().optional(),
  /** What its running guests use (resources/guest-load.ts): the load the HA leader balances. */
  load: z
    .object({
      memBytes: z.number(),
      cpu: z.number(),
      vms: z.record(z.string(), z.object({ memBytes: z.number(), cpu: z.number() })),
    })
    .optional(),
  /** HA VMs of other hosts this host could not run (its driver's problemFor, a TPM): VM id → why. */
  cannotRun: z.record(z.string(), z.string()).optional(),
});
export type HostAlive = z.infer<typeof HostAlive>;
