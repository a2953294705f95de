// Human wording for states, durations, times and exits.
import type {
  ExitInfo,
  ExitReason,
  Firmware,
  GuestWatchdog,
  Liveness,
  PortForward,
  RestartPolicy,
  VmState,
} from '../../../electron/core/api/contract';

export interface StateMeta {
  label: string;
  /** What the state means, for tooltips and screen readers. */
  help: string;
  /** Still moving: show a spinner. */
  transient: boolean;
}

export const STATE_META: Record<VmState, StateMeta> = {
  stopped: { label: 'Stopped', help: 'The VM is powered off.', transient: false },
  starting: { label: 'Starting', help: 'QEMU is launching the VM.', transient: true },
  running: { label: 'Running', help: 'The VM is running.', transient: false },
  paused: { label: 'Paused', help: 'The VM is frozen in memory; resume it to continue.', transient: false },
  stopping: { label: 'Stopping', help: 'The guest was asked to shut down.', transient: true },
  crashed: { label: 'Crashed', help: 'The VM ended unexpectedly; see the last exit.', transient: false },
  restarting: { label: 'Restarting', help: 'It crashed; Corral starts it again after a short wait (restart policy).', transient: true },
  'crash-loop': {
    label: 'Crash loop',
    help: 'It kept crashing, so Corral stopped restarting it. Fix the cause, then start it yourself.',
    transient: false,
  },
  incoming: { label: 'Arriving', help: 'Another host is moving this VM here (live migration).', transient: true },
};

export const EXIT_REASON: Record<ExitReason, string> = {
  'guest-poweroff': 'Guest powered off',
  'user-stop': 'Stopped by you',
  'user-kill': 'Forced off by you',
  'host-shutdown': 'Host shut down',
  'guest-panic': 'Guest kernel panic',
  'guest-watchdog': 'Guest watchdog fired',
  'qemu-killed': 'QEMU was killed',
  'qemu-exited': 'QEMU exited unexpectedly',
  'qemu-hung': 'QEMU stopped responding',
  'guest-hung': 'Guest stopped responding',
  'tpm-failed': 'TPM (swtpm) failed',
  'share-failed': 'Shared folder (virtiofsd) failed',
  migrated: 'Moved to another host',
};

export const FIRMWARE_LABEL: Record<Firmware, string> = {
  bios: 'BIOS',
  uefi: 'UEFI',
  'uefi-secure': 'UEFI, secure boot',
};

export const RESTART_LABEL: Record<RestartPolicy, string> = {
  never: 'Never',
  'on-failure': 'On failure',
  always: 'Always',
};

export const RESTART_HELP: Record<RestartPolicy, string> = {
  never: 'Stay stopped when the VM ends.',
  'on-failure': 'Start again after a crash, panic or hang — not after a clean power-off.',
  always: 'Start again whenever the VM ends, unless you stopped it.',
};

export const WATCHDOG_LABEL: Record<GuestWatchdog, string> = {
  off: 'Off',
  restart: 'End it (restart policy decides)',
  reset: 'Reset',
  poweroff: 'Power off',
  pause: 'Pause',
};

export function formatLiveness(l: Liveness | null): string {
  if (!l) return 'Off';
  if (l.kind === 'agent') return 'Guest agent';
  if (l.kind === 'tcp') return `TCP port ${l.port} answers`;
  return `HTTP GET :${l.port}${l.path}`;
}

/** "15 min", "2 h", "1 d 12 h", "45 s" */
export function formatSeconds(sec: number): string {
  if (sec % 86400 === 0) return `${sec / 86400} d`;
  if (sec % 3600 === 0) return `${sec / 3600} h`;
  if (sec % 60 === 0) return `${sec / 60} min`;
  return formatDuration(sec * 1000);
}

/** "3 s", "4 min 12 s", "2 h 5 min", "3 d 4 h" */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${m % 60} min`;
  const d = Math.floor(h / 24);
  return `${d} d ${h % 24} h`;
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** "just now", "5 minutes ago", "yesterday" */
export function formatAgo(at: number, now: number): string {
  const s = Math.round((at - now) / 1000);
  if (Math.abs(s) < 10) return 'just now';
  if (Math.abs(s) < 60) return rtf.format(s, 'second');
  const m = Math.round(s / 60);
  if (Math.abs(m) < 60) return rtf.format(m, 'minute');
  const h = Math.round(m / 60);
  if (Math.abs(h) < 24) return rtf.format(h, 'hour');
  return rtf.format(Math.round(h / 24), 'day');
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function formatTime(at: number): string {
  return timeFmt.format(at);
}

export function formatDateTime(at: number): string {
  return dateTimeFmt.format(at);
}

/** Time of day when today, else date and time. */
export function formatWhen(at: number, now = Date.now()): string {
  const d = new Date(at);
  const today = new Date(now);
  return d.toDateString() === today.toDateString() ? timeFmt.format(at) : dateTimeFmt.format(at);
}

export function formatExit(exit: ExitInfo): string {
  const parts: string[] = [];
  // a clean 0 says nothing; anything else helps explain the end
  if (exit.code !== null && (exit.code !== 0 || exit.signal)) parts.push(`exit code ${exit.code}`);
  if (exit.signal) parts.push(`signal ${exit.signal}`);
  return parts.join(', ');
}

/** `127.0.0.1:2222 → 22` (and `/udp` when it is not TCP) */
export function formatForward(f: PortForward): string {
  return `${f.hostAddr}:${f.hostPort} → ${f.guestPort}${f.proto === 'udp' ? '/udp' : ''}`;
}

export function basename(path: string): string {
  const i = path.lastIndexOf('/');
  return i >= 0 ? path.slice(i + 1) : path;
}

/** Terminal output as plain text: escape sequences and carriage returns removed. */
export function plainText(s: string): string {
  return (
    s
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]/g, '')
      .replace(/\r\n?/g, '\n')
      // eslint-disable-next-line no-control-regex
      .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '')
  );
}

/** "in 12 s", or "now" once the restart is due. */
export function restartIn(restartAt: number | null, now: number): string {
  if (restartAt === null) return 'soon';
  const ms = restartAt - now;
  return ms <= 500 ? 'now' : `in ${formatDuration(ms)}`;
}

/**
 * A refusal as a field shows it: the host's reason (the message without its "invalid argument"
 * preamble), else the whole message, starting with a capital. Nothing is read out of the text.
 */
export function reasonText(err: unknown): string {
  const e = err as { message?: unknown; reason?: unknown } | null;
  const s = typeof e?.reason === 'string' && e.reason ? e.reason : typeof e?.message === 'string' ? e.message : String(err);
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Names of VM settings (for "pending until the next start"). */
export const SETTING_LABEL: Record<string, string> = {
  name: 'name',
  cpus: 'CPUs',
  maxCpus: 'CPU limit',
  memoryMiB: 'memory',
  maxMemoryMiB: 'boot memory',
  iso: 'ISO',
  kernel: 'kernel',
  initrd: 'initrd',
  append: 'kernel command line',
  forwards: 'port forwards',
  nics: 'network interfaces',
  shares: 'shared folders',
  restart: 'restart policy',
  maxCrashes: 'crash limit',
  crashWindowSec: 'crash window',
  liveness: 'liveness check',
  livenessStartupSec: 'liveness start-up window',
  guestWatchdog: 'watchdog',
  cpuWeight: 'CPU weight',
  cpuCapPercent: 'CPU cap',
  ioBps: 'disk bandwidth limit',
  ioIops: 'disk IOPS limit',
};

export function settingList(keys: readonly string[]): string {
  return keys.map((k) => SETTING_LABEL[k] ?? k).join(', ');
}

/** 1536 -> "1.5 KiB"; for figures that are not whole units (rates, RSS). */
export function formatBytes(n: number): string {
  const steps = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Math.max(0, n);
  let i = 0;
  while (v >= 1024 && i < steps.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${steps[i]}`;
}
