// The QEMU monitor, limited to read-only "info" commands: a user may look, never change
// (no quit, no device_add, no migrate, no savevm, no writes to host files). The list is one of
// the shared rules (api/rules), so the page suggests exactly what the host allows.
import { MONITOR_COMMANDS, MONITOR_INFO } from '../api/rules.js';

const ALLOWED: ReadonlySet<string> = new Set(MONITOR_INFO);

export const MONITOR_HELP = `Allowed: ${MONITOR_COMMANDS.join(', ')}`;

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
