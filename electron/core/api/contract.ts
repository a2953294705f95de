// The one contract between Corral's host and its clients (UI, CLI). Every operation is a
// method here with a schema for its arguments; transports only move {method, args} and
// events, so adding a feature never touches a transport. The renderer imports types only.
import { z } from 'zod';
import { LIMITS, type NotLive } from './rules.js';
import {
  AbsPath,
  CONFIG_DEFAULTS,
  DiskFormat,
  EventRecord,
  Firmware,
  HostInfo,
  HostResources,
  HostSettings,
  NetworkList,
  NicAddresses,
  NicInput,
  Pool,
  PoolFile,
  PoolName,
  SharedFolder,
  ShareTag,
  ShareVia,
  VmConfig,
  VmInfo,
  VmName,
  VmRef,
  VmStats,
} from './schemas.js';
import { ClusterInitArgs, ClusterJoinArgs, ClusterStatus, JoinTicket } from './cluster-schemas.js';
import { AuditEntry, Identity, Password, Role, TokenId, TokenInfo, UserInfo, UserName } from './account-schemas.js';
import {
  SnapshotDescription,
  SnapshotInfo,
  SnapshotName,
  SnapshotSchedule,
  SnapshotTree,
  type SnapshotProgress,
} from './snapshot-schemas.js';
import { migrationMethods, type MigrationProgress } from './migration-schemas.js';
import { evacuationMethods, type EvacuationProgress } from './evacuation-schemas.js';
import { BalanceReport, HaStatus } from './ha-schemas.js';
import { moveMethods } from './move-schemas.js';

export * from './schemas.js';
export * from './account-schemas.js';
export * from './snapshot-schemas.js';
export * from './cluster-schemas.js';
export * from './migration-schemas.js';
export * from './evacuation-schemas.js';
export * from './ha-schemas.js';
export * from './move-schemas.js';

// ---- method arguments ------------------------------------------------------------------

const DiskBytes = z.number().int().min(LIMITS.diskBytes.min, 'must be at least 1 MiB').max(LIMITS.diskBytes.max, 'must be at most 64 TiB');
const NewDisk = z.object({ size: DiskBytes });
const ExistingDisk = z.object({ image: AbsPath, format: DiskFormat.optional() });

const NicList = z.array(NicInput).max(LIMITS.nics.max);
/** The settings a client may set: all of VmConfig but the disks and shared folders, which have their own calls; new NICs without id or MAC. */
const Settings = VmConfig.omit({ disks: true, shares: true }).extend({ nics: NicList });
type SettingsShape = typeof Settings.shape;

/** Each setting with its default from CONFIG_DEFAULTS, for vm.create. */
function withDefaults(shape: SettingsShape): { [K in keyof SettingsShape]: z.ZodDefault<SettingsShape[K]> } {
  const out: Record<string, z.ZodType> = {};
  for (const [k, schema] of Object.entries(shape))
    out[k] = (schema as z.ZodType).default(CONFIG_DEFAULTS[k as keyof typeof CONFIG_DEFAULTS] as never);
  return out as { [K in keyof SettingsShape]: z.ZodDefault<SettingsShape[K]> };
}

export const CreateArgs = z.object({
  name: VmName,
  disk: z.union([NewDisk, ExistingDisk]).nullable().default(null),
  ...withDefaults(Settings.shape),
  /** Unset: UEFI for a VM made from an installer ISO, the BIOS otherwise. */
  firmware: Firmware.optional(),
  /** Host folders shared into the guest (any at all takes an admin: see roles.ts). */
  shares: z
    .array(SharedFolder.extend({ tag: ShareTag.optional() }))
    .max(LIMITS.shares.max)
    .default([]),
  /** Unset: one NIC of the host's default kind (passt where installed, else user) carrying `forwards`. */
  nics: NicList.optional(),
  /** In a cluster: the host to create it on (its name); unset: the host with the most room that admits it. */
  host: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/, 'must be the name of a host of the cluster')
    .optional(),
});

export const UpdateArgs = Settings.partial().extend({
  vm: VmRef,
  name: VmName.optional(),
  /** Apply to the running VM now, and fail if any change cannot be (instead of leaving it pending). */
  live: z.boolean().default(false),
});

/** vm.update's answer: the VM, and each change a running VM did not take at once (pending until its next boot). */
export const UpdateResult = VmInfo.extend({
  notLive: z.array(z.object({ field: z.string(), why: z.string() })),
});

const Vm = z.object({ vm: VmRef });

/** A shared folder as vm.share.list shows it: how it reaches the guest here and how to mount it. */
export const ShareInfo = SharedFolder.extend({
  mechanism: z.enum(['virtiofs', '9p']),
  /** The mount command for a Linux guest, as root. */
  mount: z.string(),
  /** A change the running guest has not taken yet: added or removed at its next boot. */
  pending: z.enum(['add', 'remove']).nullable(),
});
export type ShareInfo = z.infer<typeof ShareInfo>;
const TermSize = {
  cols: z.number().int().min(2, 'must be at least 2').max(1000, 'must be at most 1000'),
  rows: z.number().int().min(1, 'must be at least 1').max(500, 'must be at most 500'),
};
const TerminalId = z.string().regex(/^t[0-9a-f]{16}$/, 'is not a terminal id');
const Base64 = z
  .string()
  .max(1024 * 1024)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');

// ---- the method table --------------------------------------------------------------------

function method<A extends z.ZodType, R extends z.ZodType>(args: A, result: R) {
  return { args, result };
}

const Ok = z.object({ ok: z.literal(true) });

/** A long copy's id, chosen by the caller so it can cancel before the call returns. */
const JobId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, "_" or "-"');
/** A managed base of linked clones, and the VMs standing on it. */
export const BaseInfo = z.object({ path: z.string(), source: z.string(), createdAt: z.number(), dependents: z.array(z.string()) });
export type BaseInfo = z.infer<typeof BaseInfo>;

export const methods = {
  'host.info': method(z.object({}), HostInfo),
  'host.settings': method(HostSettings.partial(), HostSettings),
  'host.resources': method(z.object({}), HostResources),
  /** Recent samples: the last hour (every 2 s) or the last day (per minute). */
  'vm.stats': method(Vm.extend({ range: z.enum(['hour', 'day']).default('hour') }), z.array(VmStats)),
  'pool.list': method(z.object({}), z.array(Pool)),
  /** Private networks in use, the host's bridges and whether passt is there. */
  'network.list': method(z.object({}), NetworkList),
  /** A running VM's addresses per NIC, as far as the host can see them (the NICs QEMU runs with). */
  'vm.addresses': method(Vm, z.array(NicAddresses)),
  /** Registers a directory as a pool (an admin's decision: it opens that directory to VMs). */
  'pool.add': method(z.object({ name: PoolName, path: AbsPath, shared: z.boolean().optional() }), Pool),
  /** Unregisters a pool (its files stay); refused while a VM uses a file in it. */
  'pool.remove': method(z.object({ name: PoolName }), Ok),
  /** ISOs, disk images and boot files in a pool (its top level), newest first. */
  'pool.files': method(z.object({ pool: PoolName }), z.array(PoolFile)),
  /** Grows a disk: live (block_resize) or offline (qemu-img resize). Never shrinks. */
  'vm.resizeDisk': method(
    Vm.extend({
      disk: z
        .number()
        .int()
        .min(0)
        .max(LIMITS.disks.max - 1)
        .default(0),
      size: DiskBytes,
    }),
    VmInfo,
  ),
  /** A VM's shared folders, with the mount command for each. */
  'vm.share.list': method(Vm, z.array(ShareInfo)),
  /** Shares a host folder with the guest (its real path; not /, the data dir, a pool or a system tree). */
  'vm.share.add': method(
    Vm.extend({ path: AbsPath, tag: ShareTag.optional(), readOnly: z.boolean().default(false), via: ShareVia.default('auto') }),
    UpdateResult,
  ),
  'vm.share.remove': method(Vm.extend({ tag: ShareTag }), UpdateResult),
  'vm.list': method(z.object({}), z.array(VmInfo)),
  'vm.get': method(Vm, VmInfo),
  'vm.create': method(CreateArgs, VmInfo),
  'vm.update': method(UpdateArgs, UpdateResult),
  'vm.start': method(Vm, VmInfo),
  /** ACPI power button, then forced off after timeoutSec. Resolves once the VM is stopped. */
  'vm.stop': method(
    Vm.extend({ timeoutSec: z.number().int().min(LIMITS.stopTimeoutSec.min).max(LIMITS.stopTimeoutSec.max).default(60) }),
    VmInfo,
  ),
  'vm.kill': method(Vm, VmInfo),
  'vm.reset': method(Vm, VmInfo),
  'vm.pause': method(Vm, VmInfo),
  'vm.resume': method(Vm, VmInfo),
  'vm.delete': method(Vm.extend({ keepDisks: z.boolean().default(false) }), Ok),
  /**
   * A copy of a stopped VM with a new id and MAC: full (disks flattened) or linked (overlays on a
   * managed base). The TPM gets a new identity unless keepTpm.
   */
  'vm.clone': method(
    Vm.extend({
      name: VmName,
      linked: z.boolean().default(false),
      keepTpm: z.boolean().default(false),
      /** A snapshot (name or id) to copy instead of the current state: a full clone of that point. */
      fromSnapshot: SnapshotName.optional(),
      job: JobId.optional(),
    }),
    VmInfo,
  ),
  /** Writes a stopped VM as one bundle (a tar) to a new file in a pool; job.progress events follow it. */
  'vm.export': method(
    /** snapshots: carry the snapshot tree (the disks keep their internal snapshots) instead of flattening. */
    Vm.extend({ file: AbsPath, snapshots: z.boolean().optional(), job: JobId.optional() }),
    z.object({ file: z.string(), size: z.number() }),
  ),
  /** A bundle or an OVA in a pool, checked whole before the VM appears. */
  'vm.import': method(z.object({ file: AbsPath, name: VmName.optional(), job: JobId.optional() }), VmInfo),
  /** Cancels a running clone, export or import; it leaves nothing behind. */
  'job.cancel': method(z.object({ job: JobId }), Ok),
  'base.list': method(z.object({}), z.array(BaseInfo)),
  /** Deletes a managed base; refused while linked clones stand on it. */
  'base.delete': method(z.object({ path: AbsPath }), Ok),
  'events.list': method(z.object({ vm: VmRef.optional(), limit: z.number().int().min(1).max(10000).default(200) }), z.array(EventRecord)),
  /** Starts pushing vm.changed / vm.removed / event.logged to this connection. */
  'events.subscribe': method(z.object({}), Ok),
  /** Starts pushing serial.data for this VM to this connection. */
  'serial.attach': method(Vm, Ok),
  'serial.detach': method(Vm, Ok),
  'serial.write': method(Vm.extend({ data: Base64 }), Ok),
  /** The guest's screen as PNG (QMP screendump). */
  'vm.screenshot': method(Vm, z.object({ png: z.string() })),
  /**
   * A one-shot ticket (valid 30 s, this VM only) for the graphical console's WebSocket at
   * base + path (base null: the page's own origin, as in corral serve).
   */
  'console.ticket': method(Vm, z.object({ ticket: z.string(), vmId: z.string(), path: z.string(), base: z.string().nullable() })),
  /** A terminal: the host's shell, or ssh into a guest through its forward to guest port 22. */
  'terminal.open': method(
    z.object({
      kind: z.enum(['host', 'ssh']),
      vm: VmRef.optional(),
      user: z
        .string()
        .regex(/^[a-z_][a-z0-9_.-]{0,31}$/i, 'is not a user name')
        .default('root'),
      ...TermSize,
    }),
    z.object({ id: TerminalId, title: z.string() }),
  ),
  'terminal.write': method(z.object({ id: TerminalId, data: Base64 }), Ok),
  'terminal.resize': method(z.object({ id: TerminalId, ...TermSize }), Ok),
  'terminal.close': method(z.object({ id: TerminalId }), Ok),
  /** A read-only HMP "info" command; anything else is refused. */
  'monitor.exec': method(Vm.extend({ command: z.string().min(1).max(200) }), z.object({ output: z.string() })),
  /**
   * The tail of the kept serial log. `size` is the log position just past `data`: live
   * serial.data continues from there (events with a lower offset repeat the log).
   */
  'serial.log': method(
    Vm.extend({
      tailBytes: z
        .number()
        .int()
        .min(0)
        .max(16 * 1024 * 1024)
        .default(256 * 1024),
    }),
    z.object({ data: z.string(), size: z.number() }),
  ),
  /** Who this connection acts as (the page shows it and asks roles.ts what it may do). */
  'auth.whoami': method(z.object({}), Identity),
  'user.list': method(z.object({}), z.array(UserInfo)),
  'user.add': method(z.object({ name: UserName, role: Role, password: Password }), UserInfo),
  'user.remove': method(z.object({ name: UserName }), Ok),
  'user.passwd': method(z.object({ name: UserName, password: Password }), Ok),
  /** An API token for scripts, acting as `user` with at most their role. The secret is in this answer only. */
  'token.create': method(
    z.object({
      user: UserName,
      role: Role,
      /** Lifetime in seconds; none: until revoked. */
      expiresSec: z
        .number()
        .int()
        .min(60, 'must be at least 60 seconds')
        .max(10 * 365 * 86400, 'must be at most 10 years')
        .optional(),
    }),
    TokenInfo.extend({ token: z.string() }),
  ),
  'token.list': method(z.object({}), z.array(TokenInfo)),
  'token.revoke': method(z.object({ id: TokenId }), Ok),
  /** A VM's snapshot tree, where it is in it, and its schedule. */
  'snapshot.list': method(Vm, SnapshotTree),
  /** Live with RAM (default), disks only of a running VM (memory false), or offline when stopped. */
  'snapshot.create': method(
    Vm.extend({ name: SnapshotName, description: SnapshotDescription.default(''), memory: z.boolean().default(true) }),
    SnapshotInfo,
  ),
  /** Back to a snapshot: the current state is lost. `restarted`: the guest had to be stopped and started. */
  'snapshot.revert': method(Vm.extend({ snapshot: z.string().min(1).max(200) }), z.object({ vm: VmInfo, restarted: z.boolean() })),
  /** Deletes one snapshot; its children move to its parent and stay revertable. */
  'snapshot.delete': method(Vm.extend({ snapshot: z.string().min(1).max(200) }), Ok),
  /** Sets (or with null, turns off) the VM's snapshot schedule. */
  'snapshot.schedule': method(Vm.extend({ schedule: SnapshotSchedule.nullable() }), SnapshotTree),
  /** The newest entries of the audit log: every mutating call, who made it and from where. */
  'ha.status': method(z.object({}), HaStatus),
  /** dry-run: what would move, where, why; on/off: the leader's automatic load shedding. */
  'ha.balance': method(z.object({ mode: z.enum(['dry-run', 'on', 'off']) }), BalanceReport),
  'audit.list': method(z.object({ limit: z.number().int().min(1).max(10000).default(100) }), z.array(AuditEntry)),
  /** Makes this host a one-host cluster: a CA, an etcd member; answers the first join token. */
  'cluster.init': method(ClusterInitArgs, JoinTicket),
  /** Joins the cluster whose join port is at `url`, with a token from `cluster.init`/`cluster.token`. */
  'cluster.join': method(ClusterJoinArgs, ClusterStatus),
  /** Another one-time join token (made on the host holding the cluster CA). */
  'cluster.token': method(
    z.object({
      ttlSec: z
        .number()
        .int()
        .min(60)
        .max(7 * 86400)
        .default(3600),
    }),
    JoinTicket,
  ),
  /** Leaves the cluster: this host's certificate is revoked, its VMs stay here. */
  'cluster.leave': method(z.object({}), Ok),
  'cluster.status': method(z.object({}), ClusterStatus),
  ...migrationMethods,
  ...evacuationMethods,
  ...moveMethods,
} as const;

export type Methods = typeof methods;
export type MethodName = keyof Methods;
/** What a caller may pass (defaults optional). */
export type ArgsIn<M extends MethodName> = z.input<Methods[M]['args']>;
/** What a handler receives (defaults applied). */
export type Args<M extends MethodName> = z.output<Methods[M]['args']>;
export type Result<M extends MethodName> = z.output<Methods[M]['result']>;

export type UpdateResult = z.infer<typeof UpdateResult>;
export type { NotLive };

/** Events pushed by the host. */
export interface EventMap {
  'vm.changed': VmInfo;
  'vm.removed': { id: string; name: string };
  'event.logged': EventRecord;
  /** `offset`: the position of data's first byte in the serial log (see serial.log's size). */
  'serial.data': { vmId: string; data: string; offset: number };
  /**
   * The serial link to the guest closed (VM stopped); a new attach is needed after a restart.
   * `reason`: why a console of a VM on another host ended (it stopped, moved, or its host went away).
   */
  'serial.closed': { vmId: string; reason?: string };
  'terminal.data': { id: string; data: string };
  'terminal.exit': { id: string; code: number | null };
  /** Every 2 s while VMs run: one sample per running VM and the host's own figures. */
  stats: { at: number; vms: VmStats[]; host: HostResources };
  /** A clone, export or import under way (sent to the caller only). */
  'job.progress': {
    job: string;
    op: 'clone' | 'export' | 'import';
    vm: string;
    /** What it is doing now (converting disk 0, archiving, verifying…). */
    phase: string;
    done: number;
    total: number;
    rateBps: number;
    etaSec: number | null;
  };
  /** Crashes, restarts and crash-loops, for desktop notifications. */
  notification: { vmId: string; vmName: string; level: 'info' | 'warning' | 'error'; title: string; body: string };
  /** A snapshot job's progress, while it runs. */
  'snapshot.progress': SnapshotProgress;
  /** A migration's figures, about twice a second while it runs. */
  'migration.progress': MigrationProgress;
  /** An evacuation or restore of a host under way: one per VM, and at the start and the end. */
  'host.evacuation': EvacuationProgress;
}
export type EventName = keyof EventMap;

export type ErrorCode =
  | 'invalid-argument'
  | 'unknown-method'
  | 'not-found'
  | 'conflict'
  | 'failed'
  | 'bad-request'
  /** The caller's role may not make this call. */
  | 'forbidden';

export interface ApiError {
  code: ErrorCode;
  message: string;
  /** The argument at fault, for invalid-argument (e.g. "memoryMiB" or "forwards.0.hostPort"). */
  field?: string;
  /** What is wrong with the field, without the "invalid argument" preamble (e.g. "must be at least 16 MiB"). */
  reason?: string;
  /** The bound that was crossed, where there is one. */
  limit?: number;
  /** The value the host has now, where it matters (e.g. a disk's size when asked to shrink it). */
  current?: number;
}

// ---- wire messages (all transports) -----------------------------------------------------

export interface RequestMessage {
  id: number;
  method: string;
  args?: unknown;
}
export type ResponseMessage = { id: number; result: unknown } | { id: number; error: ApiError };
export interface EventMessage {
  event: EventName;
  payload: unknown;
}
