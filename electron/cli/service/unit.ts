// The systemd unit that runs `corral serve`: a user unit (with lingering) for a desktop user,
// a system unit for a server. Guests are QEMU processes of their own: a restart of the service
// must leave them running, and a machine shutdown must give Corral time to stop them in order.

export type UnitScope = 'user' | 'system';

export interface UnitSpec {
  scope: UnitScope;
  /** The Node.js that runs Corral, and Corral's own `bin/corral`. */
  node: string;
  corral: string;
  dataDir: string;
  listen: string;
  /** The account a system unit runs as. */
  account?: string;
}

export const UNIT_NAME = 'corral.service';
export const SYSTEM_ACCOUNT = 'corral';
export const SYSTEM_DATA_DIR = '/var/lib/corral';
/** The ordered shutdown of every group must fit in it (10 groups of the default 60 s stop timeout). */
export const STOP_TIMEOUT = '10min';

/** systemd splits ExecStart= on spaces and expands % and $: quote each word that needs it. */
export function execWord(w: string): string {
  const escaped = w.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /[\s"'\\;]/.test(w) ? `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : escaped;
}

export function commandLine(s: Pick<UnitSpec, 'node' | 'corral' | 'dataDir' | 'listen'>): string[] {
  return [s.node, s.corral, '--data', s.dataDir, 'serve', '--listen', s.listen];
}

export function renderUnit(s: UnitSpec): string {
  const system = s.scope === 'system';
  const lines = [
    '[Unit]',
    'Description=Corral: QEMU virtual machines that come back by themselves',
    'Wants=network-online.target',
    // stopped before the network and D-Bus go: the ordered shutdown needs both
    'After=network-online.target dbus.service',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${commandLine(s).map(execWord).join(' ')}`,
    'Restart=on-failure',
    'RestartSec=2s',
    // SIGTERM to Corral alone: a restart (an upgrade, systemctl restart) leaves the guests
    // running, and the new Corral reattaches them; at a machine shutdown Corral stops them itself
    'KillMode=process',
    `TimeoutStopSec=${STOP_TIMEOUT}`,
    // Corral gives each guest's QEMU its own cgroup for CPU weight and cap
    'Delegate=yes',
    'UMask=0077',
    // hardening that QEMU and Node tolerate: both JIT (no MemoryDenyWriteExecute), QEMU needs
    // /dev/kvm and disk images anywhere the user keeps them (no PrivateDevices or ProtectHome)
    'NoNewPrivileges=yes',
    'LockPersonality=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'SystemCallArchitectures=native',
  ];
  if (system) {
    // these need a mount namespace: a system unit has one, a user unit does not
    lines.push(
      `User=${s.account ?? SYSTEM_ACCOUNT}`,
      `Group=${s.account ?? SYSTEM_ACCOUNT}`,
      ...(s.dataDir === SYSTEM_DATA_DIR ? ['StateDirectory=corral', 'StateDirectoryMode=0700'] : []),
      'SupplementaryGroups=kvm',
      'ProtectSystem=full',
      'PrivateTmp=yes',
      'ProtectKernelTunables=yes',
      'ProtectKernelModules=yes',
      'ProtectKernelLogs=yes',
      'ProtectClock=yes',
      'ProtectHostname=yes',
    );
  }
  lines.push('', '[Install]', `WantedBy=${system ? 'multi-user.target' : 'default.target'}`, '');
  return lines.join('\n');
}
