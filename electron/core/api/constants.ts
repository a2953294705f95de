// Plain values of the contract that the UI may import as values (no zod, no Node).
export const MAX_CPUS = 255;
export const MIN_MEMORY_MIB = 16;
export const MAX_MEMORY_MIB = 4 * 1024 * 1024; // 4 TiB, QEMU's own sanity range is wider

/** Settings a running VM takes at once (host-side, or through QMP/cgroups); the rest are pending until the next boot. */
export const LIVE_SETTINGS = [
  'name',
  'restart',
  'maxCrashes',
  'crashWindowSec',
  'liveness',
  'cpus',
  'memoryMiB',
  'ioBps',
  'ioIops',
  'cpuWeight',
  'cpuCapPercent',
] as const;

/** States in which a VM has a QEMU process. */
export const LIVE_STATES = ['starting', 'running', 'paused', 'stopping'] as const;
