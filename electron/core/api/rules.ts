// The rules that the host enforces and the page predicts, in one place: the limits the schemas
// use, which states have a QEMU, which actions each state allows, and which settings a running
// VM takes at once (and why not). Plain values and functions, no zod and no Node: the renderer
// imports this module as it is, so the two sides cannot drift apart.
import type { VmConfig, VmState } from './contract.js';

export const MiB_BYTES = 1024 * 1024;

/** Inclusive ranges of the contract's numeric fields. */
export const LIMITS = {
  cpus: { min: 1, max: 255 },
  /** 4 TiB; QEMU's own sanity range is wider. */
  memoryMiB: { min: 16, max: 4 * 1024 * 1024 },
  cpuWeight: { min: 1, max: 10_000 },
  /** Percent of one host core: 150 = one and a half cores. */
  cpuCapPercent: { min: 1, max: 100 * 255 },
  ioBps: { min: 4096, max: 2 ** 40 },
  ioIops: { min: 1, max: 10_000_000 },
  maxCrashes: { min: 1, max: 1000 },
  crashWindowSec: { min: 10, max: 7 * 86400 },
  /** Start-up window of a liveness probe: misses count only after its first success or this long. */
  livenessStartupSec: { min: 10, max: 24 * 3600 },
  diskBytes: { min: MiB_BYTES, max: 64 * 1024 ** 4 },
  stopTimeoutSec: { min: 0, max: 3600 },
  /** Autostart groups start in ascending order; a VM's delay holds back the next group. */
  autostartOrder: { min: 0, max: 1000 },
  autostartDelaySec: { min: 0, max: 3600 },
  disks: { min: 0, max: 8 },
  forwards: { min: 0, max: 32 },
  shares: { min: 0, max: 8 },
  shareTagLength: { min: 1, max: 31 },
  nics: { min: 0, max: 8 },
  nameLength: { min: 1, max: 100 },
} as const;

export type LimitedField = keyof typeof LIMITS;

// ---- virtual hardware ---------------------------------------------------------------------

/**
 * The CPU model new VMs get: a named, versioned model (its features never change with a QEMU
 * upgrade) that KVM on any x86-64-v2 host with AES and QEMU's TCG can both run.
 */
export const PORTABLE_CPU_MODEL = 'Westmere-v1';
/** Passthrough of the host's CPU: fastest, but the guest sees this host's CPU (KVM only). */
export const HOST_CPU_MODEL = 'host';
export const isPortableCpu = (model: string): boolean => model !== HOST_CPU_MODEL && model !== 'max';

/** Settings that change what the guest is built on: refused while a QEMU runs, not left pending. */
export const STOPPED_ONLY = ['firmware', 'tpm', 'machineType', 'cpuModel'] as const;
export function stoppedOnly(field: string): boolean {
  return (STOPPED_ONLY as readonly string[]).includes(field);
}

// ---- states -------------------------------------------------------------------------------

/** States in which a VM has a QEMU process (or should, and must be checked at host start). */
export const LIVE_STATES = ['starting', 'running', 'paused', 'stopping'] as const satisfies readonly VmState[];
export const isLive = (s: VmState): boolean => (LIVE_STATES as readonly VmState[]).includes(s);

/** States in which a VM takes settings at once (a guest is there to take them). */
export const RUNNING_STATES = ['running', 'paused'] as const satisfies readonly VmState[];
export const isRunning = (s: VmState): boolean => (RUNNING_STATES as readonly VmState[]).includes(s);

// ---- actions ------------------------------------------------------------------------------

export type VmAction = 'start' | 'stop' | 'kill' | 'reset' | 'pause' | 'resume' | 'delete' | 'edit';

/**
 * What each state allows. In `restarting`, start means "now, not after the backoff" and stop
 * cancels the pending restart; in `crash-loop`, stop settles the VM as stopped.
 */
const ACTIONS: Record<VmState, readonly VmAction[]> = {
  stopped: ['start', 'delete', 'edit'],
  crashed: ['start', 'delete', 'edit'],
  restarting: ['start', 'stop', 'kill', 'delete', 'edit'],
  'crash-loop': ['start', 'stop', 'kill', 'delete', 'edit'],
  starting: ['kill', 'edit'],
  running: ['stop', 'kill', 'reset', 'pause', 'edit'],
  paused: ['stop', 'kill', 'reset', 'resume', 'edit'],
  stopping: ['stop', 'kill', 'edit'],
  // the migration owns it until it runs here or is rolled back
  incoming: [],
};

export function can(state: VmState, action: VmAction): boolean {
  return ACTIONS[state].includes(action);
}

/** Why `action` is refused for the VM `name` in `state` (the host's error, the page's tooltip). */
export function whyNot(name: string, state: VmState, action: VmAction): string {
  if (action === 'start') return `"${name}" is already ${state}`;
  if (action === 'stop' || action === 'kill') return `"${name}" is not running`;
  if (action === 'delete') return `"${name}" is ${state}: stop it before deleting it`;
  const need = (Object.keys(ACTIONS) as VmState[]).filter((s) => ACTIONS[s].includes(action) && isRunning(s));
  return `"${name}" is ${state}: ${action} needs it ${need.join(' or ')}`;
}

// ---- live changes -------------------------------------------------------------------------

/** Settings the host or QEMU can change on a running VM (when the rules below allow it). */
export const LIVE_SETTINGS = [
  'name',
  'restart',
  'maxCrashes',
  'crashWindowSec',
  'liveness',
  'livenessStartupSec',
  'cpus',
  'memoryMiB',
  'ioBps',
  'ioIops',
  'cpuWeight',
  'cpuCapPercent',
  'autostart',
  'autostartOrder',
  'autostartDelaySec',
  'stopTimeoutSec',
  'ha',
  'evacuate',
] as const;

/** What the running QEMU was started with: the ceiling for live changes. */
export interface Booted {
  /** Memory QEMU booted with: the most the balloon can give. */
  memoryMiB: number;
  /** vCPU slots QEMU booted with (maxcpus). */
  maxCpus: number;
  /** vCPUs present now (hotplug adds, never removes). */
  cpus: number;
}

/** QEMU boots with the maximum memory; the balloon then gives the guest memoryMiB. */
export function bootMemoryMiB(c: Pick<VmConfig, 'memoryMiB' | 'maxMemoryMiB'>): number {
  return Math.max(c.memoryMiB, c.maxMemoryMiB ?? 0);
}

export function bootMaxCpus(c: Pick<VmConfig, 'cpus' | 'maxCpus'>): number {
  return Math.max(c.cpus, c.maxCpus ?? 0);
}

export function bootedFrom(c: Pick<VmConfig, 'memoryMiB' | 'maxMemoryMiB' | 'cpus' | 'maxCpus'>): Booted {
  return { memoryMiB: bootMemoryMiB(c), maxCpus: bootMaxCpus(c), cpus: c.cpus };
}

/** What the host can do besides QEMU: cgroup v2 CPU weight and cap. */
export interface HostAbilities {
  cgroups: boolean;
  cgroupsReason?: string | null;
}

/** A setting that did not reach the running VM, and why; it is pending until the next boot. */
export interface NotLive {
  field: string;
  why: string;
}

/** Why `field` cannot change to its value in `next` on the running VM; null: it can. */
export function liveBlocker(field: string, next: Pick<VmConfig, 'memoryMiB' | 'cpus'>, booted: Booted, host: HostAbilities): string | null {
  switch (field) {
    case 'name':
    case 'restart':
    case 'maxCrashes':
    case 'crashWindowSec':
    case 'liveness':
    case 'livenessStartupSec':
    case 'ioBps':
    case 'ioIops':
    case 'autostart':
    case 'autostartOrder':
    case 'autostartDelaySec':
    case 'stopTimeoutSec':
    case 'ha': // whom the fencer guards and the cluster may move: no QEMU change
    case 'evacuate':
      return null;
    case 'memoryMiB':
      return next.memoryMiB <= booted.memoryMiB ? null : `it booted with ${booted.memoryMiB} MiB, the most the balloon can give`;
    case 'cpus':
      if (next.cpus < booted.cpus) return 'vCPUs can be added to a running guest, not removed';
      return next.cpus <= booted.maxCpus ? null : `it booted with room for ${booted.maxCpus} vCPUs (max vCPUs)`;
    case 'cpuWeight':
    case 'cpuCapPercent':
      return host.cgroups ? null : `cgroups unavailable${host.cgroupsReason ? `: ${host.cgroupsReason}` : ''}`;
    default:
      return 'it is part of how QEMU was started';
  }
}

// ---- shared folders ------------------------------------------------------------------------

/** The command that mounts a shared folder in a Linux guest (as root), at /mnt/TAG. */
export function mountCommand(tag: string, mechanism: 'virtiofs' | '9p', readOnly: boolean): string {
  const at = `/mnt/${tag}`;
  const mount =
    mechanism === 'virtiofs'
      ? `mount -t virtiofs${readOnly ? ' -o ro' : ''} ${tag} ${at}`
      : `mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288${readOnly ? ',ro' : ''} ${tag} ${at}`;
  return `mkdir -p ${at} && ${mount}`;
}

// ---- port forwards ------------------------------------------------------------------------

/** 127.0.0.0/8: reachable from this host only. */
export function isLoopback(addr: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(addr);
}

/**
 * Why a forward opens the host beyond its own loopback (and so needs `exposed: true`); null
 * when it does not. Ports below 1024 are the host's system services' range.
 */
export function exposure(f: { hostAddr: string; hostPort: number }): string | null {
  if (!isLoopback(f.hostAddr))
    return f.hostAddr === '0.0.0.0' ? 'it listens on every network of the host' : `it listens on ${f.hostAddr}, beyond loopback`;
  if (f.hostPort < 1024) return `host port ${f.hostPort} is below 1024 (system services)`;
  return null;
}

// ---- the QEMU monitor ---------------------------------------------------------------------

/** What the read-only monitor console may ask ("info <what>"): commands that look, none that change. */
export const MONITOR_INFO = [
  'balloon',
  'block',
  'blockstats',
  'chardev',
  'cpus',
  'history',
  'irq',
  'kvm',
  'mem',
  'mtree',
  'name',
  'network',
  'numa',
  'pci',
  'qtree',
  'registers',
  'roms',
  'status',
  'tlb',
  'usb',
  'uuid',
  'version',
  'vnc',
  'iothreads',
  'memdev',
  'hotpluggable-cpus',
  // a migration's state and its parameters (whether the stream uses TLS)
  'migrate',
  'migrate_parameters',
] as const;

/** The allowed commands in full, sorted: what the host's "help" lists and the page suggests. */
export const MONITOR_COMMANDS: readonly string[] = [...MONITOR_INFO].sort().map((c) => `info ${c}`);
