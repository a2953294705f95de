// Human output for the CLI (scripts use --json).
import type { EventRecord, HostInfo, HostResources, ShareInfo, VmInfo, VmStats } from '../core/api/contract.js';
import { isPortableCpu } from '../core/api/rules.js';
import { formatSize, MiB } from '../core/api/units.js';

const FIRMWARE_TEXT = { bios: 'BIOS (SeaBIOS)', uefi: 'UEFI (OVMF)', 'uefi-secure': 'UEFI with secure boot (OVMF, Microsoft keys)' };

export function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n');
}

export function printJson(v: unknown): void {
  out(JSON.stringify(v, null, 2));
}

/** The stable shape of `vm show --json` (scripts depend on it). */
export function showJson(v: VmInfo) {
  return {
    name: v.name,
    id: v.id,
    state: v.state,
    pid: v.pid,
    restarts: v.restarts,
    lastExit: v.lastExit && {
      code: v.lastExit.code,
      signal: v.lastExit.signal,
      reason: v.lastExit.reason,
      at: new Date(v.lastExit.at).toISOString(),
    },
    stateSince: new Date(v.stateSince).toISOString(),
    restartAt: v.restartAt && new Date(v.restartAt).toISOString(),
    config: v.config,
    // only in a cluster: where the VM is
    ...(v.host ? { host: v.host } : {}),
  };
}

export function shellQuote(s: string): string {
  return /^[\w.-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...(r[i] ?? '')].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i]! - [...c].length))).join('  ')).join('\n');
}

export function vmTable(vms: VmInfo[]): string {
  if (!vms.length) return 'No virtual machines. Create one: corral vm create NAME --memory 1G --disk 20G --iso PATH';
  // in a cluster, the host each VM is on (marked when that host stopped reporting)
  const clustered = vms.some((v) => v.host);
  const hostCol = (v: VmInfo) => (clustered ? [v.host ? `${v.host.name}${v.host.reporting ? '' : ' (not reporting)'}` : '-'] : []);
  return table([
    ['NAME', ...(clustered ? ['HOST'] : []), 'STATE', 'CPUS', 'MEMORY', 'PID', 'RESTARTS', 'LAST EXIT'],
    ...vms.map((v) => [
      v.name,
      ...hostCol(v),
      v.state,
      String(v.config.cpus),
      formatSize(v.config.memoryMiB * MiB),
      v.pid ? String(v.pid) : '-',
      String(v.restarts),
      v.lastExit?.reason ?? '-',
    ]),
  ]);
}

export function vmDetails(v: VmInfo, shares: readonly ShareInfo[] = []): string {
  const c = v.config;
  const lines: Array<[string, string]> = [
    ['Name', v.name],
    ['Id', v.id],
    ['State', `${v.state} since ${time(v.stateSince)}${v.restartAt ? `, restart at ${time(v.restartAt)}` : ''}`],
    ['PID', v.pid ? String(v.pid) : '-'],
    ['CPUs', `${c.cpus}${c.maxCpus && c.maxCpus > c.cpus ? ` (up to ${c.maxCpus} live)` : ''}`],
    [
      'Memory',
      `${formatSize(c.memoryMiB * MiB)}${c.maxMemoryMiB && c.maxMemoryMiB > c.memoryMiB ? ` (boots with ${formatSize(c.maxMemoryMiB * MiB)})` : ''}`,
    ],
    [
      'Limits',
      [
        c.cpuWeight !== null && `cpu weight ${c.cpuWeight}`,
        c.cpuCapPercent !== null && `cpu cap ${c.cpuCapPercent} %`,
        c.ioBps !== null && `${formatSize(c.ioBps)}/s`,
        c.ioIops !== null && `${c.ioIops} IOPS`,
      ]
        .filter(Boolean)
        .join(', ') || '-',
    ],
    ['Pending', v.pending.length ? `${v.pending.join(', ')} (at the next boot)` : '-'],
    ...c.disks.map((d, i): [string, string] => [
      `Disk ${i}`,
      `${d.path} (${d.format}${d.owned ? '' : ', external'}${d.base ? `, linked clone of the base ${d.base}` : ''})`,
    ]),
    ['CD-ROM', c.iso ?? '-'],
    ...(c.kernel
      ? ([
          ['Kernel', c.kernel],
          ['Initrd', c.initrd ?? '-'],
          ['Append', c.append ?? '-'],
        ] as Array<[string, string]>)
      : []),
    ...c.nics.map((n): [string, string] => [
      `NIC ${n.id}`,
      `${n.kind}${n.bridge ? ` ${n.bridge}` : ''}${n.network ? ` ${n.network}` : ''}, MAC ${n.mac}`,
    ]),
    ...(c.nics.length ? [] : ([['NICs', 'none']] as Array<[string, string]>)),
    ['Forwards', c.forwards.map((f) => `${f.proto} ${f.hostAddr}:${f.hostPort} -> ${f.guestPort}`).join(', ') || '-'],
    ...(shares.length
      ? shares.map((s): [string, string] => [
          `Share ${s.tag}`,
          `${s.path} (${s.mechanism}, ${s.readOnly ? 'read-only' : 'read-write'}${s.pending ? `, ${s.pending === 'add' ? 'added' : 'removed'} at the next boot` : ''}); mount: ${s.mount}`,
        ])
      : [['Shared folders', '-'] as [string, string]]),
    ['Restart', `${c.restart} (crash-loop after ${c.maxCrashes} crashes in ${Math.round(c.crashWindowSec / 60)} min)`],
    [
      'Autostart',
      c.autostart ? `on, order ${c.autostartOrder}${c.autostartDelaySec ? `, next group waits ${c.autostartDelaySec} s` : ''}` : 'off',
    ],
    ['Stop timeout', `${c.stopTimeoutSec} s at host shutdown`],
    [
      'Liveness',
      c.liveness
        ? c.liveness.kind === 'agent'
          ? 'guest agent'
          : c.liveness.kind === 'tcp'
            ? `tcp guest port ${c.liveness.port}`
            : `http guest port ${c.liveness.port}${c.liveness.path}`
        : 'off',
    ],
    ['Watchdog', c.guestWatchdog === 'off' ? 'off' : `i6300esb, ${c.guestWatchdog}`],
    ['Firmware', FIRMWARE_TEXT[c.firmware]],
    ['TPM', c.tpm ? 'TPM 2.0 (swtpm)' : 'off'],
    ['Machine type', c.machineType ?? "q35 (not pinned: this host QEMU's newest)"],
    ['CPU model', `${c.cpuModel}${isPortableCpu(c.cpuModel) ? ' (portable)' : ' (passthrough, not portable)'}`],
    ['Restarts', String(v.restarts)],
    [
      'Last exit',
      v.lastExit
        ? `${v.lastExit.reason}${v.lastExit.signal ? ` (${v.lastExit.signal})` : v.lastExit.code !== null ? ` (status ${v.lastExit.code})` : ''} at ${time(v.lastExit.at)}`
        : '-',
    ],
  ];
  return table(lines.map(([k, val]) => [k + ':', val]));
}

export function eventLine(e: EventRecord): string {
  const change = e.kind === 'state' && e.from !== e.to ? ` ${e.from} -> ${e.to}` : '';
  const why = e.reason ? ` [${e.reason}]` : '';
  const line = `${time(e.at)}  ${e.vmName ?? '-'}  ${e.kind}${change}${why}  ${e.message}`;
  return e.report ? `${line}\n${crashReportText(e.report)}` : line;
}

/** A crash report, indented under its event line. */
export function crashReportText(r: NonNullable<EventRecord['report']>): string {
  const lines = [`exit: ${r.signal ? `signal ${r.signal}` : r.code !== null ? `status ${r.code}` : 'unknown (Corral was not its parent)'}`];
  if (r.qmpEvents.length) lines.push(`QMP events: ${r.qmpEvents.map((q) => q.event).join(', ')}`);
  const tail = (text: string, n: number) => text.trimEnd().split('\n').slice(-n);
  if (r.qemuLog.trim()) lines.push('QEMU said:', ...tail(r.qemuLog, 5).map((l) => `  ${l}`));
  if (r.serialTail.trim()) lines.push('last console lines:', ...tail(r.serialTail, 8).map((l) => `  ${l.trimEnd()}`));
  return lines.map((l) => `    ${l}`).join('\n');
}

function time(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function statsText(v: VmInfo, s: VmStats | null): string {
  if (!s) return `${v.name}: no statistics yet${v.state === 'running' ? ' (the first sample comes within 2 s)' : ` (${v.state})`}`;
  const rate = (n: number) => `${formatSize(Math.round(n))}/s`;
  return table([
    ['CPU:', `${s.cpuPercent.toFixed(1)} % of a core`],
    ['Memory (resident):', formatSize(s.rssBytes)],
    ['Balloon:', s.balloonBytes === null ? '-' : formatSize(s.balloonBytes)],
    ['Disk read:', rate(s.diskReadBps)],
    ['Disk write:', rate(s.diskWriteBps)],
    ...(s.nics?.length
      ? s.nics.map((n) => [
          `Network ${n.nic}:`,
          n.rxBps !== null && n.txBps !== null ? `in ${rate(n.rxBps)}, out ${rate(n.txBps)}` : (n.note ?? '-'),
        ])
      : [
          [
            'Network:',
            s.netRxBps !== null && s.netTxBps !== null ? `in ${rate(s.netRxBps)}, out ${rate(s.netTxBps)}` : 'no NIC the host can measure',
          ],
        ]),
  ]);
}

export function hostText(info: HostInfo, r: HostResources): string {
  const pct = r.commitLimitBytes ? Math.round((r.committedBytes / r.commitLimitBytes) * 100) : 0;
  return table([
    ['Data dir:', info.dataDir],
    [
      'QEMU:',
      `${info.qemu.version} (${info.qemu.binary}), ${info.qemu.accel.toUpperCase()}${info.qemu.warning ? ` - ${info.qemu.warning}` : ''}`,
    ],
    ...(info.qemu.runsAs ? [['QEMU runs as:', info.qemu.runsAs]] : []),
    ['CPUs:', `${r.cpus} (${r.cpuPercent.toFixed(0)} % busy)`],
    ['Memory:', `${formatSize(r.memoryBytes)} (${formatSize(r.memoryAvailableBytes)} available)`],
    ['Committed:', `${formatSize(r.committedBytes)} of ${formatSize(r.commitLimitBytes)} (${pct} %, overcommit ${r.overcommit})`],
    ['CPU weight/cap:', r.cgroups.available ? 'available (cgroup v2)' : `unavailable: ${r.cgroups.reason}`],
  ]);
}
