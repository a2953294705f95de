// What the page asks before it moves a VM or turns HA on: which hosts of the cluster can take
// the VM (each host's own verdict, never a guess of the page) and whether the VM's files allow
// HA. Kept beside the migration schemas; the contract spreads them in.
import { z } from 'zod';
import { VmConfig, VmName, VmRef } from './schemas.js';

/** One host's answer to "can you take this VM now?". */
export const MoveTarget = z.object({
  name: z.string(),
  ok: z.boolean(),
  /** Why it cannot (not reporting, in maintenance, no room, a machine type it lacks…), or null. */
  why: z.string().nullable(),
  /** Memory it may still commit to running VMs, from its last publication (null: unknown). */
  roomBytes: z.number().nullable(),
});
export type MoveTarget = z.infer<typeof MoveTarget>;

export const MoveTargets = z.object({
  vm: z.string(),
  /** Where the VM is now. */
  from: z.string(),
  /** A running VM moves live; a stopped one offline. */
  live: z.boolean(),
  /** Every other host of the cluster, in name order. */
  hosts: z.array(MoveTarget),
});
export type MoveTargets = z.infer<typeof MoveTargets>;

export const moveMethods = {
  /** The cluster's other hosts, each with whether it can take the VM now and why not. */
  'vm.moveTargets': { args: z.object({ vm: VmRef }), result: MoveTargets },
  /** Target side: the checks of migration.prepareIncoming, making nothing. */
  'migration.checkIncoming': {
    args: z.object({ name: VmName, config: VmConfig, live: z.boolean() }),
    result: z.object({ problem: z.string().nullable() }),
  },
  /** Why the VM cannot be HA as its files lie (a disk or boot file outside a shared pool), or null. */
  'vm.haBlocker': { args: z.object({ vm: VmRef }), result: z.object({ why: z.string().nullable() }) },
} as const;
