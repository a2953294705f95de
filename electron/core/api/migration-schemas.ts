// The schemas of live migration: the source's call (vm.migrate), the target's side of it
// (migration.*, called by the source host over a peer connection) and the progress event.
import { z } from 'zod';
import { EventRecord, ExitInfo, VmConfig, VmInfo, VmName, VmRef } from './schemas.js';
import { VmStats } from './stats-schemas.js';

/** A VM's id: the same on both hosts, so a VM keeps its identity when it moves. */
export const VmId = z.string().regex(/^[0-9a-f]{12}$/, 'is not a VM id');
/** shared: both hosts see the disks at the same paths (RAM only moves); local: the disks are copied. */
export const MigrationStorage = z.enum(['shared', 'local']);
const HostAddress = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.:-]+$/, 'is not a host name or address');

export const MigrateArgs = z
  .object({
    vm: VmRef,
    /** A host of this host's cluster, by name; or the URL of another `corral serve` (two standalone hosts). */
    to: z.string().min(1).max(2000),
    /** With a URL only: an admin API token of the target host (cluster hosts trust each other's certificates). */
    token: z.string().min(1).max(500).optional(),
    /** The longest the guest may be paused at the switch-over. */
    maxDowntimeMs: z.number().int().min(1, 'must be at least 1 ms').max(60_000, 'must be at most 60000 ms').default(300),
    /** auto: shared when every disk is inside a pool of the target at the same path, local otherwise. */
    storage: z.enum(['auto', 'shared', 'local']).default('auto'),
  })
  .superRefine((a, ctx) => {
    if (!isTargetUrl(a.to)) return;
    if (!URL.canParse(a.to)) ctx.addIssue({ code: 'custom', path: ['to'], message: 'must be a URL such as http://host:port' });
    else if (!a.token) ctx.addIssue({ code: 'custom', path: ['token'], message: 'is needed with a URL: an admin API token of that host' });
  });

/** Whether a migration's target is a URL (a standalone host) rather than a cluster host's name. */
export const isTargetUrl = (to: string) => to.includes('://');

export const MigrateResult = z.object({
  vm: VmName,
  to: z.string(),
  live: z.boolean(),
  storage: MigrationStorage,
  totalMs: z.number(),
  /** How long the guest was paused at the switch-over (QEMU's figure); null for an offline move. */
  downtimeMs: z.number().nullable(),
});

/** The most of a VM's journal and statistics that travel with it. */
export const MOVED_EVENTS_MAX = 200;
export const MOVED_STATS_MAX = 2000;

/**
 * What a VM has been through on the hosts it ran on before, so that after a move it is the same
 * machine to whoever looks at it: when it was made, its restarts and last exit, its uptime, the
 * end of its journal and a day of statistics (oldest first).
 */
export const MovedHistory = z.object({
  createdAt: z.number().int().min(0),
  /** When the running guest's QEMU started (a live move): its uptime goes on. */
  startedAt: z.number().int().min(0).nullable(),
  restarts: z.number().int().min(0),
  lastExit: ExitInfo.nullable(),
  events: z
    .array(EventRecord.omit({ id: true, vmId: true, vmName: true }).extend({ host: z.string().min(1).max(253) }))
    .max(MOVED_EVENTS_MAX),
  stats: z.array(VmStats.omit({ vmId: true })).max(MOVED_STATS_MAX),
});

export const PrepareIncomingArgs = z.object({
  id: VmId,
  name: VmName,
  config: VmConfig,
  storage: MigrationStorage,
  /** Live (a running guest) or offline (a stopped VM: only its record and, for local storage, its disks). */
  live: z.boolean(),
  /** The address of this host as the source dials it: the migration stream and NBD listen there. */
  address: HostAddress,
  /** Each disk's virtual size in bytes (local storage: the target makes empty disks of that size). */
  diskSizes: z.array(z.number().int().min(0)).max(16),
  /** Absent from a source that keeps no history across moves: the VM then starts a new one here. */
  history: MovedHistory.optional(),
});

export const PrepareIncomingResult = z.object({
  /** Where the source sends the migration stream (null: offline). */
  migrationUri: z.string().nullable(),
  /** The NBD server exporting the new disks (null: shared storage). */
  nbd: z.object({ host: HostAddress, port: z.number().int() }).nullable(),
});

export const MigrationProgress = z.object({
  vmId: z.string(),
  vmName: z.string(),
  /** The target host, as the migration named it (a cluster host's name, or a URL). */
  to: z.string().optional(),
  phase: z.enum(['disks', 'memory', 'switch-over', 'done', 'failed']),
  ramTransferred: z.number(),
  ramRemaining: z.number(),
  ramTotal: z.number(),
  diskTransferred: z.number(),
  diskTotal: z.number(),
  /** Throughput of the migration stream, in megabits per second. */
  mbps: z.number(),
  expectedDowntimeMs: z.number().nullable(),
});

export const migrationMethods = {
  /** Moves a VM to another host: live when it runs, offline when it is stopped. */
  'vm.migrate': { args: MigrateArgs, result: MigrateResult },
  /** Cancels the VM's migration under way: it keeps running here. */
  'vm.migrateCancel': { args: z.object({ vm: VmRef }), result: z.object({ ok: z.literal(true) }) },
  /** Target side: checks the VM fits here, creates it as "incoming" and starts QEMU waiting for the stream. */
  'migration.prepareIncoming': { args: PrepareIncomingArgs, result: PrepareIncomingResult },
  /** Target side, once the source's migration completed: the VM runs here now (or is stopped here, offline). */
  'migration.finishIncoming': { args: z.object({ vm: VmId, live: z.boolean() }), result: VmInfo },
  /** Target side: the source is still moving the VM; an arrival not touched for a minute is dropped. */
  'migration.touchIncoming': { args: z.object({ vm: VmId }), result: z.object({ ok: z.literal(true) }) },
  /** Target side: removes an incoming VM and everything made for it; refused once it runs here. */
  'migration.abortIncoming': { args: z.object({ vm: VmId }), result: z.object({ aborted: z.boolean() }) },
} as const;

export type MigrateArgs = z.infer<typeof MigrateArgs>;
export type MigrateResult = z.infer<typeof MigrateResult>;
export type PrepareIncomingArgs = z.infer<typeof PrepareIncomingArgs>;
export type PrepareIncomingResult = z.infer<typeof PrepareIncomingResult>;
export type MigrationProgress = z.infer<typeof MigrationProgress>;
export type MigrationStorage = z.infer<typeof MigrationStorage>;
export type MovedHistory = z.infer<typeof MovedHistory>;
