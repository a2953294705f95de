// The schemas of maintenance mode: `host.evacuate` empties a host of the cluster (each VM as its
// `evacuate` setting says) and keeps it from taking VMs until `host.restore`, which can bring
// them back. The record of what went where is kept in etcd, so any host can restore.
import { z } from 'zod';

/** A cluster host's name (or id). */
const HostName = z
  .string()
  .min(1, 'must not be empty')
  .max(253, 'must be at most 253 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'is not a host name');

/** What the evacuation did with one VM. */
export const EvacuatedVm = z.object({
  id: z.string(),
  name: z.string(),
  /**
   * migrated: moved live; moved: moved while stopped; restarted: shut down, moved, started on
   * `to`; stopped: left stopped here; failed: still here as it was (`why` says why).
   */
  action: z.enum(['migrated', 'moved', 'restarted', 'stopped', 'failed']),
  to: z.string().nullable(),
  wasRunning: z.boolean(),
  why: z.string().nullable(),
});
export type EvacuatedVm = z.infer<typeof EvacuatedVm>;

/** A host in maintenance, as etcd keeps it. */
export const MaintenanceRecord = z.object({
  host: z.string(),
  hostId: z.string(),
  since: z.number(),
  /** Done: the evacuation finished (a host in maintenance takes no VMs from the start). */
  done: z.boolean(),
  vms: z.array(EvacuatedVm),
});
export type MaintenanceRecord = z.infer<typeof MaintenanceRecord>;

export const EvacuationProgress = z.object({
  host: z.string(),
  op: z.enum(['evacuate', 'restore']),
  /** The VM being handled now, or null at the start and the end. */
  vm: z.string().nullable(),
  done: z.number(),
  total: z.number(),
  message: z.string(),
});
export type EvacuationProgress = z.infer<typeof EvacuationProgress>;

export const evacuationMethods = {
  /** Maintenance mode: the host takes no VMs, and each of its VMs migrates, restarts elsewhere or stops. */
  'host.evacuate': { args: z.object({ host: HostName }), result: MaintenanceRecord },
  /** Ends maintenance mode; bringBack: the VMs that left (or stopped) come back (or start). */
  'host.restore': {
    args: z.object({ host: HostName, bringBack: z.boolean().default(false) }),
    result: z.object({ host: z.string(), returned: z.array(EvacuatedVm) }),
  },
} as const;
