// The figures of the resource monitor: each running VM's sample and the host's resources.
// schemas.ts re-exports them.
import { z } from 'zod';

/** One NIC's traffic as the guest sees it (rx: received by the guest). */
export const NicRate = z.object({
  nic: z.string(),
  /** null: the host cannot measure this NIC; note says why. */
  rxBps: z.number().nullable(),
  txBps: z.number().nullable(),
  note: z.string().nullable(),
});

export const VmStats = z.object({
  vmId: z.string(),
  at: z.number(),
  /** Host CPU used by the VM's QEMU, percent of one core. */
  cpuPercent: z.number(),
  rssBytes: z.number(),
  balloonBytes: z.number().nullable(),
  diskReadBps: z.number(),
  diskWriteBps: z.number(),
  /**
   * The sum over the NICs the host can measure (bridge NICs' taps); null when it measures none
   * (passt, slirp and private NICs keep no counters the host can read).
   */
  netRxBps: z.number().nullable(),
  netTxBps: z.number().nullable(),
  /** Each NIC's figures (in the day history: per-minute averages). */
  nics: z.array(NicRate).optional(),
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
export type NicRate = z.infer<typeof NicRate>;
export type HostResources = z.infer<typeof HostResources>;
