// VM config + host capabilities -> QEMU argv. Pure: no I/O, so golden tests pin it exactly.
// Assembled from one small builder per section, in the order QEMU documents them.
import type { VmConfig } from '../api/contract.js';
import type { VmFiles } from '../paths.js';
import { json, optValue, opts } from './escape.js';
import * as ids from './ids.js';
import { bootMaxCpus, bootMemoryMiB, HOST_CPU_MODEL } from '../api/rules.js';
import type { UefiFirmware } from './firmware.js';
import { shareSocket } from './virtiofsd.js';
import { nicsArgv } from './nic-argv.js';

export interface HostCaps {
  accel: 'kvm' | 'tcg';
  /** The unprivileged user QEMU drops to once it has opened its files (a host running as root). */
  runAs?: string;
  /** What makes this host's private networks its own (its data dir). */
  hostKey?: string;
}

export interface LaunchSpec {
  id: string;
  name: string;
  config: VmConfig;
  files: VmFiles;
  /** The OVMF build of a UEFI VM (null: BIOS). */
  firmware?: UefiFirmware | null;
  /** How each of config.shares reaches the guest on this host (default: virtiofs). */
  shareVia?: ReadonlyArray<'virtiofs' | '9p'>;
  /** The target of a live migration: QEMU waits for migrate-incoming instead of booting. */
  incoming?: boolean;
  /** The fd QEMU inherits for each passt NIC (the socket it listens on), by NIC id. */
  passtFds?: ReadonlyMap<string, number>;
}

export function buildArgv(spec: LaunchSpec, caps: HostCaps): string[] {
  return [
    ...base(spec),
    ...machine(spec, caps),
    ...cpuAndMemory(spec, caps),
    ...firmware(spec),
    ...tpm(spec),
    ...drives(spec.config),
    ...bootKernel(spec.config),
    ...network(spec, caps),
    ...sharedFolders(spec),
    ...consoles(spec.files),
    ...devices(spec.config),
    ...guestAgent(spec.files),
    ...hotplugPorts(),
    ...sandbox(caps, spec.config),
  ];
}

function base(spec: LaunchSpec): string[] {
  return [
    '-name',
    opts(`guest=${optValue(spec.name)}`, { 'debug-threads': true }),
    '-nodefaults',
    '-no-user-config',
    '-S', // held until the host has QMP connected: it sees every event from the first instruction
    '-pidfile',
    spec.files.pidFile,
    '-msg',
    'timestamp=on',
    // the address comes later over QMP (migrate-incoming), once TLS is set up
    ...(spec.incoming ? ['-incoming', 'defer'] : []),
  ];
}

// ---- virtual hardware: machine type, CPU model, firmware, TPM ----------------------------

function machine(spec: LaunchSpec, caps: HostCaps): string[] {
  const fw = spec.firmware;
  const props = {
    accel: caps.accel,
    // secure boot keeps the variables store out of the guest OS's reach: SMM only
    smm: fw?.secure ? true : undefined,
    pflash0: fw ? ids.FW_CODE_NODE : undefined,
    pflash1: fw ? ids.FW_VARS_NODE : undefined,
    // virtiofsd maps the guest's RAM: it must be shared memory (see cpuAndMemory)
    'memory-backend': usesVirtiofs(spec) ? ids.RAM_BACKEND : undefined,
  };
  return ['-machine', opts(spec.config.machineType ?? 'q35', props)];
}

function cpuAndMemory(spec: LaunchSpec, _caps: HostCaps): string[] {
  const c = spec.config;
  // enforce: a host (or TCG) lacking a feature of the model refuses to start, naming it,
  // instead of quietly giving the guest a different CPU
  const cpu = c.cpuModel === HOST_CPU_MODEL ? HOST_CPU_MODEL : `${c.cpuModel},enforce`;
  const mem = bootMemoryMiB(c);
  // a memfd backend the size of -m: the balloon still gives pages back (QEMU punches holes in
  // the memfd, which virtiofsd's mapping sees too), and live memory stays the balloon's business
  const shared = usesVirtiofs(spec) ? ['-object', opts('memory-backend-memfd', { id: ids.RAM_BACKEND, size: `${mem}M`, share: true })] : [];
  return ['-cpu', cpu, '-smp', `cpus=${c.cpus},maxcpus=${bootMaxCpus(c)}`, '-m', `size=${mem}M`, ...shared];
}

function shareVia(spec: LaunchSpec, i: number): 'virtiofs' | '9p' {
  return spec.shareVia?.[i] ?? 'virtiofs';
}

function usesVirtiofs(spec: LaunchSpec): boolean {
  return (spec.config.shares ?? []).some((_s, i) => shareVia(spec, i) === 'virtiofs');
}

function firmware(spec: LaunchSpec): string[] {
  const fw = spec.firmware;
  if (!fw) return [];
  return [
    '-blockdev',
    json({ driver: 'file', filename: fw.code, 'node-name': ids.FW_CODE_FILE_NODE, 'read-only': true }),
    '-blockdev',
    json({ driver: 'raw', file: ids.FW_CODE_FILE_NODE, 'node-name': ids.FW_CODE_NODE, 'read-only': true }),
    '-blockdev',
    json({ driver: 'file', filename: spec.files.efiVars, 'node-name': ids.FW_VARS_FILE_NODE }),
    // qcow2, Corral's own copy of the template, never with a backing file
    '-blockdev',
    json({ driver: 'qcow2', file: ids.FW_VARS_FILE_NODE, 'node-name': ids.FW_VARS_NODE, backing: null }),
    ...(fw.secure ? ['-global', 'driver=cfi.pflash01,property=secure,value=on'] : []),
  ];
}

function tpm(spec: LaunchSpec): string[] {
  if (!spec.config.tpm) return [];
  return [
    '-chardev',
    opts('socket', { id: ids.TPM_CHARDEV, path: spec.files.swtpmSocket }),
    '-tpmdev',
    opts('emulator', { id: ids.TPM_BACKEND, chardev: ids.TPM_CHARDEV }),
    '-device',
    json({ driver: 'tpm-crb', tpmdev: ids.TPM_BACKEND, id: ids.TPM_DEVICE }),
  ];
}

// ---- memory, disks, boot -------------------------------------------------------------------

function drives(c: VmConfig): string[] {
  const out: string[] = [];
  c.disks.forEach((d, i) => {
    const file = ids.diskFileNode(i);
    const node = ids.diskNode(i);
    // a linked clone's managed base: the one backing file Corral opens, named here, read-only
    if (d.base) {
      out.push(
        '-blockdev',
        json({ driver: 'file', filename: d.base, 'node-name': ids.diskBaseFileNode(i), 'read-only': true }),
        '-blockdev',
        json({ driver: 'qcow2', file: ids.diskBaseFileNode(i), 'node-name': ids.diskBaseNode(i), 'read-only': true, backing: null }),
      );
    }
    const backing = d.format !== 'qcow2' ? {} : { backing: d.base ? ids.diskBaseNode(i) : null };
    out.push(
      '-blockdev',
      json({ driver: 'file', filename: d.path, 'node-name': file, discard: 'unmap' }),
      // explicit format: QEMU never probes an image (a raw guest disk could pose as qcow2);
      // no backing file, whatever the qcow2 header says now (it may have changed since create)
      '-blockdev',
      json({ driver: d.format, file, 'node-name': node, discard: 'unmap', ...backing }),
      '-device',
      json({ driver: 'virtio-blk-pci', drive: node, id: `${node}-dev`, bootindex: i + 1 }),
    );
  });
  if (c.iso) {
    out.push(
      '-blockdev',
      json({ driver: 'file', filename: c.iso, 'node-name': ids.CD_FILE_NODE, 'read-only': true }),
      '-blockdev',
      json({ driver: 'raw', file: ids.CD_FILE_NODE, 'node-name': ids.CD_NODE, 'read-only': true }),
      // the CD boots first when present: that is how an installer ISO is used
      '-device',
      json({ driver: 'ide-cd', drive: ids.CD_NODE, bus: 'ide.0', id: ids.CD_DEVICE, bootindex: 0 }),
    );
  }
  return out;
}

function bootKernel(c: VmConfig): string[] {
  if (!c.kernel) return [];
  return ['-kernel', c.kernel, ...(c.initrd ? ['-initrd', c.initrd] : []), ...(c.append ? ['-append', c.append] : [])];
}

function network(spec: LaunchSpec, caps: HostCaps): string[] {
  return nicsArgv(spec.config.nics, { passtFds: spec.passtFds ?? new Map(), hostKey: caps.hostKey ?? '' });
}

// ---- shared folders --------------------------------------------------------------------------

function sharedFolders(spec: LaunchSpec): string[] {
  const out: string[] = [];
  (spec.config.shares ?? []).forEach((s, i) => {
    if (shareVia(spec, i) === 'virtiofs') {
      out.push(
        '-chardev',
        opts('socket', { id: ids.shareChardev(i), path: shareSocket(spec.files, i) }),
        '-device',
        json({ driver: 'vhost-user-fs-pci', chardev: ids.shareChardev(i), tag: s.tag, id: ids.shareDevice(i), 'queue-size': 1024 }),
      );
      return;
    }
    // security_model=none: the guest sees the host's owners and modes, and what it creates
    // belongs to QEMU's user (no xattrs that host tools cannot read). QEMU reaches the folder
    // as that user: under a root host, corral-qemu, so it may only what that user may.
    out.push(
      '-fsdev',
      opts('local', { id: ids.shareFsdev(i), path: s.path, security_model: 'none', readonly: s.readOnly ? true : undefined }),
      '-device',
      json({ driver: 'virtio-9p-pci', fsdev: ids.shareFsdev(i), mount_tag: s.tag, id: ids.shareDevice(i) }),
    );
  });
  return out;
}

function consoles(f: VmFiles): string[] {
  return [
    '-chardev',
    opts('socket', { id: ids.QMP_CHARDEV, path: f.qmpSocket, server: true, wait: false }),
    '-mon',
    `chardev=${ids.QMP_CHARDEV},mode=control`,
    // QEMU itself keeps the serial log, so output is kept even while no client is attached
    '-chardev',
    opts('socket', { id: ids.SERIAL_CHARDEV, path: f.serialSocket, server: true, wait: false, logfile: f.serialLog, logappend: true }),
    '-serial',
    `chardev:${ids.SERIAL_CHARDEV}`,
    '-display',
    'none',
    // the graphical console: VNC on a private unix socket, proxied to the UI (never a TCP port)
    '-vnc',
    opts(`unix:${optValue(f.vncSocket)}`, {}),
  ];
}

// The watchdog's QEMU action. "restart" pauses the guest so the supervisor, not QEMU, decides
// (through the restart policy, with its backoff and crash-loop limit).
const WATCHDOG_ACTION = { restart: 'pause', reset: 'reset', poweroff: 'poweroff', pause: 'pause' } as const;

function devices(c: VmConfig): string[] {
  return [
    '-device',
    json({ driver: 'VGA', id: ids.VIDEO_DEVICE, vgamem_mb: 16 }),
    // an absolute pointer, so the mouse in the console lands where the user points
    '-device',
    json({ driver: 'qemu-xhci', id: ids.USB_CONTROLLER }),
    '-device',
    json({ driver: 'usb-tablet', id: ids.TABLET_DEVICE, bus: `${ids.USB_CONTROLLER}.0` }),
    '-device',
    json({ driver: 'pvpanic-pci', id: ids.PVPANIC_DEVICE }),
    // a panicking guest ends QEMU with a failure status; the supervisor classifies and restarts it
    '-action',
    'panic=exit-failure',
    ...(c.guestWatchdog === 'off'
      ? []
      : ['-device', json({ driver: 'i6300esb', id: ids.WATCHDOG_DEVICE }), '-action', `watchdog=${WATCHDOG_ACTION[c.guestWatchdog]}`]),
    '-device',
    json({ driver: 'virtio-rng-pci', id: ids.RNG_DEVICE }),
    // memory given back and forth while running (the memory slider)
    '-device',
    json({ driver: 'virtio-balloon-pci', id: ids.BALLOON_DEVICE }),
  ];
}

function guestAgent(f: VmFiles): string[] {
  // the channel qemu-guest-agent looks for; used by the "agent" liveness probe
  return [
    '-device',
    json({ driver: 'virtio-serial-pci', id: ids.VIRTIO_SERIAL_DEVICE }),
    '-chardev',
    opts('socket', { id: ids.AGENT_CHARDEV, path: f.qgaSocket, server: true, wait: false }),
    '-device',
    json({ driver: 'virtserialport', bus: `${ids.VIRTIO_SERIAL_DEVICE}.0`, chardev: ids.AGENT_CHARDEV, name: ids.AGENT_PORT_NAME }),
  ];
}

/** Empty PCIe ports for NICs added while running; last, so every device keeps the slot it had before they existed. */
function hotplugPorts(): string[] {
  return ids.NIC_HOTPLUG_PORTS.flatMap((id, i) => ['-device', json({ driver: 'pcie-root-port', id, bus: 'pcie.0', chassis: i + 1 })]);
}

function sandbox(caps: HostCaps, c: VmConfig): string[] {
  // -runas needs setuid/setgid after the filter is installed; once QEMU has dropped to a user
  // without capabilities those calls can raise nothing, so allowing them costs nothing
  const elevate = caps.runAs ? 'allow' : 'deny';
  // the filter is installed before the netdevs are made: a bridge NIC's helper must be spawned
  const spawn = c.nics.some((n) => n.kind === 'bridge') ? 'allow' : 'deny';
  return [
    ...(caps.runAs ? ['-runas', caps.runAs] : []),
    '-sandbox',
    `on,obsolete=deny,elevateprivileges=${elevate},spawn=${spawn},resourcecontrol=deny`,
  ];
}
