// What the HA methods answer (core/ha): the cluster's view of this host's HA VMs, and the
// load balancer's report. Kept beside the contract, like the account schemas.
import { z } from 'zod';

export const HaVmStatus = z.object({
  name: z.string(),
  priority: z.number().int(),
  group: z.string().nullable(),
  hosts: z.array(z.string()),
  /** The host that may run it and its epoch (null: not in a cluster yet). */
  owner: z.string().nullable(),
  epoch: z.number().int().nullable(),
  state: z.string(),
});

export const HaStatus = z.object({
  /** In a cluster with a live lease (false on a single host). */
  clustered: z.boolean(),
  /** Why HA VMs may not start on this host now (a fence not yet cleared, no lease), or null. */
  startBlocker: z.string().nullable(),
  fence: z.object({ at: z.number(), killed: z.array(z.string()) }).nullable(),
  balance: z.boolean(),
  vms: z.array(HaVmStatus),
  /** Moves the leader has written whose target has not reported the VM running yet. */
  pending: z.array(z.object({ vm: z.string(), to: z.string(), epoch: z.number().int(), since: z.number() })),
});

export const BalanceReport = z.object({
  enabled: z.boolean(),
  /** The cluster's imbalance (0 even, 1 all on one host), null without a cluster. */
  imbalance: z.number().nullable(),
  loads: z.record(z.string(), z.number()),
  proposal: z.object({ vm: z.string(), from: z.string(), to: z.string(), why: z.string() }).nullable(),
  why: z.string(),
  /** The imbalance once the proposal is made. */
  after: z.number().nullable().optional(),
  /** HA VMs on the hosts that would shed which may not move now, and why (cannot migrate, cooldown, no target). */
  held: z.array(z.object({ vm: z.string(), why: z.string() })).optional(),
  /** The leader's moves: the one under way and the last ones, newest first. */
  moves: z
    .array(
      z.object({
        vm: z.string(),
        from: z.string(),
        to: z.string(),
        /** When it started, and ended (null while under way). */
        at: z.number(),
        endedAt: z.number().nullable(),
        outcome: z.enum(['moving', 'moved', 'failed']),
        why: z.string(),
        error: z.string().nullable(),
      }),
    )
    .optional(),
});

export type HaStatus = z.infer<typeof HaStatus>;
export type BalanceReport = z.infer<typeof BalanceReport>;
