// The VM state machine and the classification of every end of a guest.
import type { ExitReason, VmState } from '../api/contract.js';

const TRANSITIONS: Record<VmState, readonly VmState[]> = {
  // stopped -> restarting: policy "always" after a guest poweroff
  // stopped -> incoming: a record made for a migration to this host, before its QEMU starts
  stopped: ['starting', 'restarting', 'incoming'],
  crashed: ['starting', 'stopped', 'restarting', 'crash-loop'],
  restarting: ['starting', 'stopped'],
  'crash-loop': ['starting', 'stopped'],
  starting: ['running', 'paused', 'stopped', 'crashed'],
  running: ['paused', 'stopping', 'stopped', 'crashed'],
  paused: ['running', 'stopping', 'stopped', 'crashed'],
  stopping: ['stopped', 'crashed', 'running', 'paused'],
  // a migration to this host: it runs here once the source is done, or it is deleted
  incoming: ['running', 'stopped'],
};

export function canTransition(from: VmState, to: VmState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** What the host asked for before the end, if anything. */
export type Requested = 'stop' | 'kill' | 'host-shutdown' | 'migrated' | null;

export interface EndFacts {
  requested: Requested;
  /** Data of QMP's SHUTDOWN event, if one came. */
  shutdown: { guest: boolean; reason: string } | null;
  panicked: boolean;
  watchdog: boolean;
  /** Set by the watchdog when it gave up on an unresponsive QMP or guest. */
  hung: 'qemu-hung' | 'guest-hung' | null;
  /** The VM's swtpm ended while QEMU ran (QEMU was killed for it). */
  tpmFailed: boolean;
  /** A shared folder's virtiofsd ended while QEMU ran (QEMU was killed for it). */
  shareFailed?: boolean;
  code: number | null;
  signal: string | null;
}

export function classifyEnd(f: EndFacts): ExitReason {
  if (f.requested === 'kill') return 'user-kill';
  if (f.requested === 'stop') return 'user-stop';
  if (f.requested === 'host-shutdown') return 'host-shutdown';
  if (f.requested === 'migrated') return 'migrated';
  if (f.hung) return f.hung;
  if (f.tpmFailed) return 'tpm-failed';
  if (f.shareFailed) return 'share-failed';
  if (f.panicked) return 'guest-panic';
  if (f.watchdog) return 'guest-watchdog';
  if (f.signal) return 'qemu-killed';
  if (f.shutdown?.reason === 'host-signal') return 'qemu-killed';
  if (f.shutdown?.guest && (f.code === 0 || f.code === null)) return 'guest-poweroff';
  return 'qemu-exited';
}

/** Ends that the user or the guest chose: not crashes. */
export function isCleanEnd(r: ExitReason): boolean {
  return r === 'guest-poweroff' || r === 'user-stop' || r === 'user-kill' || r === 'host-shutdown' || r === 'migrated';
}

export function describeEnd(r: ExitReason, code: number | null, signal: string | null): string {
  const how = signal ? ` (signal ${signal})` : code !== null && code !== 0 ? ` (exit status ${code})` : '';
  const text: Record<ExitReason, string> = {
    'guest-poweroff': 'The guest powered off',
    'user-stop': 'Stopped by the user',
    'user-kill': 'Forced off by the user',
    'host-shutdown': 'Stopped because the host shut down',
    'guest-panic': 'The guest kernel panicked',
    'guest-watchdog': "The guest's watchdog fired",
    'qemu-killed': 'QEMU was killed',
    'qemu-exited': 'QEMU exited unexpectedly',
    'qemu-hung': 'QEMU stopped answering and was killed',
    'guest-hung': 'The guest stopped answering its liveness probe',
    'tpm-failed': "The VM's TPM (swtpm) ended, so QEMU was stopped",
    'share-failed': "A shared folder's virtiofsd ended, so QEMU was stopped",
    migrated: 'Moved to another host (live migration)',
  };
  return text[r] + how;
}
