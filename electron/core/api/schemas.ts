// The shapes the contract is made of: VM configuration and state, events, host figures and
// settings, with their limits from rules.ts. contract.ts re-exports all of it and adds the
// method table; this file holds the data, that one the calls.
import { z } from 'zod';
import { VmHostRef } from './cluster-schemas.js';
import { LIMITS, PORTABLE_CPU_MODEL } from './rules.js';
import { Nic, PortForward } from './network-schemas.js';

export * from './network-schemas.js';
export * from './stats-schemas.js';
export * from './host-schemas.js';

// ---- primitives -------------------------------------------------------------------------

/** VM names are shown everywhere and used by scripts: generous, but never a path or a control code. */
export const VmName = z
  .string()
  .min(1, 'must not be empty')
  .max(LIMITS.nameLength.max, `must be at most ${LIMITS.nameLength.max} characters`)
  .refine((s) => s.trim().length > 0, 'must not be only spaces')
  .refine((s) => !s.includes('/'), 'must not contain "/"')
  // eslint-disable-next-line no-control-regex
  .refine((s) => !/[\u0000-\u001f\u007f-\u009f]/.test(s), 'must not contain control characters');

/** A VM is named in calls by its id or its name. */
export const VmRef = z.string().min(1, 'must not be empty').max(200);

export const AbsPath = z
  .string()
  .min(1, 'must not be empty')
  .max(4000)
  .refine((s) => s.startsWith('/'), 'must be an absolute path')
  .refine((s) => !s.includes('\0'), 'must not contain NUL');

export const DiskFormat = z.enum(['qcow2', 'raw']);
export const RestartPolicy = z.enum(['never', 'on-failure', 'always']);

/**
 * restarting: a crashed guest waits out its backoff; crash-loop: restarts gave up until the user starts it;
 * incoming: another host is migrating it here (its QEMU waits for the stream and does not run yet).
 */
export const VmState = z.enum(['stopped', 'starting', 'running', 'paused', 'stopping', 'crashed', 'restarting', 'crash-loop', 'incoming']);

/** Why a guest ended; one per end, shown as lastExit.reason. */
export const ExitReason = z.enum([
  'guest-poweroff',
  'user-stop',
  'user-kill',
  'host-shutdown',
  'guest-panic',
  'guest-watchdog',
  'qemu-killed',
  'qemu-exited',
  'qemu-hung',
  'guest-hung',
  'tpm-failed',
  'share-failed',
  /** The guest moved to another host (live migration): it runs there now. */
  'migrated',
]);

/** An integer field within its LIMITS entry, with messages that name the bounds. */
function ranged(field: 'cpus' | 'cpuWeight' | 'maxCrashes' | 'ioIops', unit = '') {
  const { min, max } = LIMITS[field];
  return z.number().int('must be a whole number').min(min, `must be at least ${min}${unit}`).max(max, `must be at most ${max}${unit}`);
}

export const Cpus = ranged('cpus');
export const MemoryMiB = z
  .number()
  .int('must be a whole number of MiB')
  .min(LIMITS.memoryMiB.min, `must be at least ${LIMITS.memoryMiB.min} MiB`)
  .max(LIMITS.memoryMiB.max, 'must be at most 4 TiB');

/** How a folder reaches the guest: virtiofs (needs virtiofsd), 9p, or auto (virtiofs where the host can run it). */
export const ShareVia = z.enum(['auto', 'virtiofs', '9p']);
/** The name the guest mounts a shared folder by; 9p takes at most 31 bytes, virtiofs 36. */
export const ShareTag = z
  .string()
  .min(1, 'must not be empty')
  .max(LIMITS.shareTagLength.max, `must be at most ${LIMITS.shareTagLength.max} characters`)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, ".", "_" or "-", starting with a letter or digit');

/** A host folder shared into the guest. */
export const SharedFolder = z.object({
  /** The folder's real path (symlinks resolved when it was added). */
  path: AbsPath,
  tag: ShareTag,
  /** The guest cannot change anything in it. */
  readOnly: z.boolean().default(false),
  via: ShareVia.default('auto'),
});

export const Append = z
  .string()
  .max(4096)
  // eslint-disable-next-line no-control-regex
  .refine((s) => !/[\u0000-\u001f]/.test(s), 'must not contain control characters');

const Port = z.number().int().min(1).max(65535);

/** How the supervisor tells a hung guest from a live one (opt-in): the guest agent, or a forwarded guest port. */
export const Liveness = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('agent') }),
  /** The guest service must send something first (as SSH does): slirp accepts any connection itself. */
  z.object({ kind: z.literal('tcp'), port: Port }),
  z.object({
    kind: z.literal('http'),
    port: Port,
    path: z
      .string()
      .startsWith('/', 'must start with "/"')
      .max(200)
      .regex(/^[\x21-\x7e]*$/, 'must be a plain URL path')
      .default('/'),
  }),
]);

/** The i6300esb watchdog: off, or what happens when the guest stops feeding it. restart = end it and let the restart policy decide. */
export const GuestWatchdog = z.enum(['off', 'restart', 'reset', 'poweroff', 'pause']);

export const MaxCrashes = ranged('maxCrashes');
export const CrashWindowSec = z
  .number()
  .int()
  .min(LIMITS.crashWindowSec.min, `must be at least ${LIMITS.crashWindowSec.min} s`)
  .max(LIMITS.crashWindowSec.max, 'must be at most 7 days');
/** How long a liveness probe may fail before its first success without counting as misses (a slow boot). */
export const LivenessStartupSec = z
  .number()
  .int()
  .min(LIMITS.livenessStartupSec.min, `must be at least ${LIMITS.livenessStartupSec.min} s`)
  .max(LIMITS.livenessStartupSec.max, 'must be at most 24 hours');

/** bios: SeaBIOS; uefi: OVMF; uefi-secure: OVMF with secure boot and Microsoft's keys enrolled. */
export const Firmware = z.enum(['bios', 'uefi', 'uefi-secure']);
/** A machine type as QEMU names it, pinned when the VM is made (pc-q35-7.2, never the q35 alias). */
export const MachineType = z.string().regex(/^[a-z][a-z0-9._-]{0,63}$/, 'must be a QEMU machine type such as pc-q35-7.2');
/** A named QEMU CPU model (portable), or "host" (passthrough: KVM only, not portable). */
export const CpuModel = z.string().regex(/^[A-Za-z][A-Za-z0-9._-]{0,63}$/, 'must be a QEMU CPU model such as Westmere-v1, or host');
/** Seconds within a LIMITS range, with messages that name the bounds. */
function seconds(field: 'autostartDelaySec' | 'stopTimeoutSec') {
  const { min, max } = LIMITS[field];
  return z.number().int('must be a whole number of seconds').min(min, `must be at least ${min} s`).max(max, `must be at most ${max} s`);
}
export const AutostartOrder = z
  .number()
  .int('must be a whole number')
  .min(LIMITS.autostartOrder.min, `must be at least ${LIMITS.autostartOrder.min}`)
  .max(LIMITS.autostartOrder.max, `must be at most ${LIMITS.autostartOrder.max}`);
export const AutostartDelaySec = seconds('autostartDelaySec');
export const StopTimeoutSec = seconds('stopTimeoutSec');

export const DiskConfig = z.object({
  path: AbsPath,
  format: DiskFormat,
  /** Created by Corral: deleted with the VM unless the user keeps disks. */
  owned: z.boolean(),
  /** A linked clone's disk: a qcow2 overlay on this read-only base that Corral manages. */
  base: AbsPath.optional(),
});

export const CpuWeight = ranged('cpuWeight');
/** Percent of one host core: 150 = one and a half cores. */
export const CpuCapPercent = z
  .number()
  .int('must be a whole number')
  .min(LIMITS.cpuCapPercent.min, 'must be at least 1 %')
  .max(LIMITS.cpuCapPercent.max, 'is more than any host has');
export const IoBps = z
  .number()
  .int('must be a whole number')
  .min(LIMITS.ioBps.min, 'must be at least 4 KiB/s')
  .max(LIMITS.ioBps.max, 'must be at most 1 TiB/s');
export const IoIops = z
  .number()
  .int('must be a whole number')
  .min(LIMITS.ioIops.min, 'must be at least 1')
  .max(LIMITS.ioIops.max, 'must be at most 10 million');

/** High availability (core/ha): restarted on another host when this one dies; needs shared storage. */
export const HaConfig = z.object({
  enabled: z.boolean(),
  /** Higher first when several VMs need a new host at once. */
  priority: z.number().int('must be a whole number').min(0, 'must be at least 0').max(1000, 'must be at most 1000'),
  /** Anti-affinity: two HA VMs of one group never share a host. */
  group: z
    .string()
    .min(1, 'must not be empty')
    .max(64, 'must be at most 64 characters')
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, ".", "_" or "-", starting with a letter or digit')
    .nullable(),
  /** Preferred hosts, in order (any live host with room when none of them has). */
  hosts: z.array(z.string().min(1, 'must not be empty').max(253, 'must be at most 253 characters')).max(16, 'at most 16 hosts'),
});

/**
 * What `corral host evacuate` does with this VM: migrate (live when it runs; offline when it is
 * stopped), restart (shut down, moved, started on another host), or stop (left stopped here).
 * A VM that cannot migrate live (a TPM, a refusal of every other host) is restarted elsewhere.
 */
export const EvacuateMode = z.enum(['migrate', 'restart', 'stop']);

export const VmConfig = z.object({
  /** vCPUs at boot; raised live up to maxCpus by hotplug. */
  cpus: Cpus,
  /** Hotplug headroom (null: none, maxCpus = cpus). */
  maxCpus: Cpus.nullable(),
  /** The memory the guest gets: the balloon target while running (at most maxMemoryMiB). */
  memoryMiB: MemoryMiB,
  /** The memory QEMU boots with; memory above it needs a restart (null: = memoryMiB). */
  maxMemoryMiB: MemoryMiB.nullable(),
  /** cgroup v2 cpu.weight (null: the default, 100). */
  cpuWeight: CpuWeight.nullable(),
  /** cgroup v2 cpu.max as percent of one core (null: no cap). */
  cpuCapPercent: CpuCapPercent.nullable(),
  /** Disk throttling for every disk of the VM (QMP block_set_io_throttle). */
  ioBps: IoBps.nullable(),
  ioIops: IoIops.nullable(),
  disks: z.array(DiskConfig).max(LIMITS.disks.max),
  iso: AbsPath.nullable(),
  kernel: AbsPath.nullable(),
  initrd: AbsPath.nullable(),
  append: Append.nullable(),
  /**
   * The forwards of the first passt or user NIC (kept for clients from before NICs were a
   * list): given on create or update, they replace that NIC's forwards.
   */
  forwards: z.array(PortForward).max(LIMITS.forwards.max),
  /** Host folders shared into the guest (changed with vm.share.*: adding one is an admin's call). */
  shares: z.array(SharedFolder).max(LIMITS.shares.max),
  /** The network cards, in PCI order; none: no network. */
  nics: z.array(Nic).max(LIMITS.nics.max),
  restart: RestartPolicy,
  /** Crash-loop limit: this many crashes within crashWindowSec stop automatic restarts. */
  maxCrashes: MaxCrashes,
  crashWindowSec: CrashWindowSec,
  liveness: Liveness.nullable(),
  /** Misses of the liveness probe count only after its first success, or after this many seconds. */
  livenessStartupSec: LivenessStartupSec,
  guestWatchdog: GuestWatchdog,
  firmware: Firmware,
  /** A TPM 2.0 (swtpm) whose state lives with the VM. */
  tpm: z.boolean(),
  /** null: the host QEMU's newest q35 (VMs made before types were pinned). */
  machineType: MachineType.nullable(),
  cpuModel: CpuModel,
  /** Started when the machine boots (the first host start since then), in autostartOrder groups. */
  autostart: z.boolean(),
  /** Lower groups start first and stop last; VMs of one group start together. */
  autostartOrder: AutostartOrder,
  /** After this VM runs (and answers its liveness probe), the next group waits this long. */
  autostartDelaySec: AutostartDelaySec,
  /** How long the guest gets to shut down on the ACPI button when the machine shuts down. */
  stopTimeoutSec: StopTimeoutSec,
  ha: HaConfig,
  evacuate: EvacuateMode,
});

/** The settings a VM is created with, and what a config stored by an older Corral lacks. */
export const CONFIG_DEFAULTS: Omit<VmConfig, 'disks'> = {
  cpus: 1,
  maxCpus: null,
  memoryMiB: 512,
  maxMemoryMiB: null,
  cpuWeight: null,
  cpuCapPercent: null,
  ioBps: null,
  ioIops: null,
  iso: null,
  kernel: null,
  initrd: null,
  append: null,
  forwards: [],
  shares: [],
  nics: [],
  restart: 'never',
  maxCrashes: 5,
  crashWindowSec: 900,
  liveness: null,
  livenessStartupSec: 300,
  guestWatchdog: 'off',
  firmware: 'bios',
  tpm: false,
  machineType: null,
  cpuModel: PORTABLE_CPU_MODEL,
  autostart: false,
  autostartOrder: 0,
  autostartDelaySec: 0,
  stopTimeoutSec: 60,
  ha: { enabled: false, priority: 0, group: null, hosts: [] },
  evacuate: 'migrate',
};

export const ExitInfo = z.object({
  code: z.number().int().nullable(),
  signal: z.string().nullable(),
  reason: ExitReason,
  at: z.number(),
});

export const VmInfo = z.object({
  id: z.string(),
  name: z.string(),
  state: VmState,
  /** Seconds since epoch × 1000 of the last state change. */
  stateSince: z.number(),
  pid: z.number().int().nullable(),
  restarts: z.number().int(),
  lastExit: ExitInfo.nullable(),
  /** When a pending automatic restart is due (state restarting). */
  restartAt: z.number().nullable(),
  /** When the current QEMU started (null when not running): uptime. */
  startedAt: z.number().nullable(),
  /** Settings changed while running that take effect at the next boot. */
  pending: z.array(z.string()),
  /** Virtual size of each disk in bytes (null: unreadable), in the order of config.disks. */
  diskSizes: z.array(z.number().nullable()),
  /** What the running QEMU was started with, the ceiling for live changes (null: not running). */
  booted: z
    .object({
      memoryMiB: z.number(),
      maxCpus: z.number(),
      cpus: z.number(),
      /** The forwards QEMU runs with: what probes and ssh connect to (never a pending change). */
      forwards: z.array(PortForward),
      /** The NICs QEMU runs with: a NIC saved but not here (or here but no longer saved) waits for the next boot. */
      nics: z.array(Nic),
    })
    .nullable(),
  config: VmConfig,
  configVersion: z.number().int(),
  createdAt: z.number(),
  /** In a cluster: the host the VM is on (absent on a single host). */
  host: VmHostRef.optional(),
});

/** Everything known about a crash, kept with the event that recorded it. */
export const CrashReport = z.object({
  code: z.number().nullable(),
  signal: z.string().nullable(),
  reason: ExitReason,
  qmpEvents: z.array(z.object({ event: z.string(), at: z.number().nullable(), data: z.unknown() })),
  serialTail: z.string(),
  qemuLog: z.string(),
});

export const EventRecord = z.object({
  id: z.number().int(),
  vmId: z.string().nullable(),
  vmName: z.string().nullable(),
  at: z.number(),
  kind: z.enum(['created', 'updated', 'deleted', 'state', 'error', 'host']),
  from: z.string().nullable(),
  to: z.string().nullable(),
  reason: z.string().nullable(),
  message: z.string(),
  report: CrashReport.nullable(),
  /** The host it happened on, when not this one: a VM's history moves with it. */
  host: z.string().optional(),
});

export type VmInfo = z.infer<typeof VmInfo>;
export type VmConfig = z.infer<typeof VmConfig>;
export type VmState = z.infer<typeof VmState>;
export type ExitReason = z.infer<typeof ExitReason>;
export type ExitInfo = z.infer<typeof ExitInfo>;
export type EventRecord = z.infer<typeof EventRecord>;
export type DiskConfig = z.infer<typeof DiskConfig>;
export type HaConfig = z.infer<typeof HaConfig>;
export type SharedFolder = z.infer<typeof SharedFolder>;
export type ShareVia = z.infer<typeof ShareVia>;
export type RestartPolicy = z.infer<typeof RestartPolicy>;
export type Liveness = z.infer<typeof Liveness>;
export type GuestWatchdog = z.infer<typeof GuestWatchdog>;
export type Firmware = z.infer<typeof Firmware>;
export type CrashReport = z.infer<typeof CrashReport>;
