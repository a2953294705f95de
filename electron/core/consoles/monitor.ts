// The QEMU monitor, limited to read-only "info" commands: a user may look, never change
// (no quit, no device_add, no migrate, no savevm, no writes to host files).
const ALLOWED = new Set([
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
]);

export const MONITOR_HELP = `Allowed: ${[...ALLOWED]
  .sort()
  .map((c) => `info ${c}`)
  .join(', ')}`;

/** The normalized command if it is allowed, else an error message. */
export function checkMonitorCommand(input: string): { command: string } | { error: string } {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f;]/.test(input))
    return { error: `"${input.trim().split(/\s/)[0]}…" is not allowed: one command per line, no control characters. ${MONITOR_HELP}` };
  const words = input.trim().split(/\s+/);
  const [verb, what, ...rest] = words;
  if ((verb === 'info' || verb === 'i') && what && ALLOWED.has(what) && rest.every((w) => /^[\w-]+$/.test(w))) {
    return { command: ['info', what, ...rest].join(' ') };
  }
  if (verb === 'help' || verb === '?' || (verb === 'info' && !what)) return { error: MONITOR_HELP };
  return { error: `"${input.trim()}" is not allowed: this console is read-only. ${MONITOR_HELP}` };
}
