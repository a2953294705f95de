// The figures of the resource monitor: each running VM's sample and the host's resources.
// schemas.ts re-exports them.
import { z } from 'zod';

export const VmStats = z.object({
  vmId: z.string(),
  at: z.number(),
  /** Host CPU used by the VM's QEMU, percent of one core. */
  cpuPercent: z.number(),
  rssBytes: z.number(),
  balloonBytes: z.number().nullable(),
  diskReadBps: z.number(),
  diskWriteBps: z.number(),
  /** null: not measured (passt, slirp and private NICs keep no counters the host can read). */
  netRxBps: z.number().nullable(),
  netTxBps: z.number().nullable(),
});

export const HostResources = z.object({
  cpus: z.number(),
  memoryBytes: z.number(),
  memoryAvailableBytes: z.number(),
  /** Host CPU busy, percent of all cores. */
  cpuPercent: z.number(),
  /** Memory the running VMs may use (their boot memory), and the limit for it. */
  committedBytes: z.number(),
  commitLimitBytes: z.number(),
  overcommit: z.number(),
  cgroups: z.object({ available: z.boolean(), reason: z.string().nullable() }),
});

export type VmStats = z.infer<typeof VmStats>;
export type HostResources = z.infer<typeof HostResources>;
