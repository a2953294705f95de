// The create/edit form: its fields, the obvious client-side checks, and the conversion to
// vm.create / vm.update arguments. Error keys are the contract's argument paths ("memoryMiB",
// "disk.size", "forwards.0.hostPort") so the host's invalid-argument errors land on the
// same inputs as ours.
import type { ArgsIn, Firmware, GuestWatchdog, Liveness, PortForward, RestartPolicy, VmInfo } from '../../../electron/core/api/contract';
import { bootMemoryMiB, exposure, isRunning, LIMITS, LIVE_SETTINGS, PORTABLE_CPU_MODEL } from '../../../electron/core/api/rules';
import { formatSize, MiB, parseSize } from '../../../electron/core/api/units';

/** A whole number within `range` (inclusive). */
function within(v: number | null | undefined, range: { readonly min: number; readonly max: number }): v is number {
  return isNum(v) && Number.isInteger(v) && v >= range.min && v <= range.max;
}

/** "7 days", "24 hours", "10 seconds": a bound of a time window, in words (a day in hours). */
function spell(sec: number): string {
  const [n, unit] =
    sec % 86400 === 0 && sec > 86400
      ? [sec / 86400, 'day']
      : sec % 3600 === 0
        ? [sec / 3600, 'hour']
        : sec % 60 === 0
          ? [sec / 60, 'minute']
          : [sec, 'second'];
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

export type MemUnit = 'MiB' | 'GiB';
export type DiskUnit = 'MiB' | 'GiB' | 'TiB';
export type DiskMode = 'new' | 'existing' | 'none';
export type DiskFormatChoice = 'auto' | 'qcow2' | 'raw';
export type LivenessKind = 'off' | Liveness['kind'];
export type WindowUnit = 'min' | 'h';
export type StartupUnit = 's' | 'min';
/** auto: the host decides (UEFI for a VM made from an installer ISO). */
export type FirmwareChoice = 'auto' | Firmware;

export interface ForwardRow {
  key: number;
  proto: 'tcp' | 'udp';
  hostAddr: string;
  hostPort: number | null;
  guestPort: number | null;
  /** Opened beyond loopback (or below port 1024) on purpose. */
  exposed: boolean;
}

export interface VmForm {
  name: string;
  cpus: number | null;
  memory: number | null;
  memoryUnit: MemUnit;
  diskMode: DiskMode;
  diskSize: number | null;
  diskUnit: DiskUnit;
  diskImage: string;
  diskFormat: DiskFormatChoice;
  iso: string;
  kernel: string;
  initrd: string;
  append: string;
  forwards: ForwardRow[];
  restart: RestartPolicy;
  maxCrashes: number | null;
  crashWindow: number | null;
  crashWindowUnit: WindowUnit;
  livenessKind: LivenessKind;
  livenessPort: number | null;
  livenessPath: string;
  /** The probe's start-up window (livenessStartupSec), in `livenessStartupUnit`. */
  livenessStartup: number | null;
  livenessStartupUnit: StartupUnit;
  guestWatchdog: GuestWatchdog;
  firmware: FirmwareChoice;
  tpm: boolean;
  cpuModel: string;
  /** Start when the machine boots, in order groups; the delay holds back the next group (seconds). */
  autostart: boolean;
  autostartOrder: number | null;
  autostartDelay: number | null;
  /** At host shutdown: seconds for the ACPI shutdown before it is forced. */
  stopTimeout: number | null;
}

export type FieldErrors = Record<string, string>;

let rowKey = 1;
export function newForwardRow(hostPort: number | null = null, guestPort: number | null = null): ForwardRow {
  return { key: rowKey++, proto: 'tcp', hostAddr: '127.0.0.1', hostPort, guestPort, exposed: false };
}

export function emptyForm(): VmForm {
  return {
    name: '',
    cpus: 2,
    memory: 2,
    memoryUnit: 'GiB',
    diskMode: 'new',
    diskSize: 20,
    diskUnit: 'GiB',
    diskImage: '',
    diskFormat: 'auto',
    iso: '',
    kernel: '',
    initrd: '',
    append: '',
    forwards: [],
    restart: 'never',
    maxCrashes: 5,
    crashWindow: 15,
    crashWindowUnit: 'min',
    livenessKind: 'off',
    livenessPort: null,
    livenessPath: '/',
    // the host's default: five minutes for a guest to first answer
    livenessStartup: 5,
    livenessStartupUnit: 'min',
    guestWatchdog: 'off',
    firmware: 'auto',
    tpm: false,
    cpuModel: PORTABLE_CPU_MODEL,
    autostart: false,
    autostartOrder: 0,
    autostartDelay: 0,
    stopTimeout: 60,
  };
}

/** Seconds as the form shows them: whole minutes in minutes, anything else in seconds. */
function startupWindow(sec: number): Pick<VmForm, 'livenessStartup' | 'livenessStartupUnit'> {
  return sec % 60 === 0 ? { livenessStartup: sec / 60, livenessStartupUnit: 'min' } : { livenessStartup: sec, livenessStartupUnit: 's' };
}

export function formFromVm(vm: VmInfo): VmForm {
  const c = vm.config;
  const gib = c.memoryMiB % 1024 === 0;
  return {
    ...emptyForm(),
    name: vm.name,
    cpus: c.cpus,
    memory: gib ? c.memoryMiB / 1024 : c.memoryMiB,
    memoryUnit: gib ? 'GiB' : 'MiB',
    diskMode: 'none',
    iso: c.iso ?? '',
    kernel: c.kernel ?? '',
    initrd: c.initrd ?? '',
    append: c.append ?? '',
    forwards: c.forwards.map((f) => ({
      key: rowKey++,
      proto: f.proto,
      hostAddr: f.hostAddr,
      hostPort: f.hostPort,
      guestPort: f.guestPort,
      exposed: f.exposed,
    })),
    restart: c.restart,
    maxCrashes: c.maxCrashes,
    crashWindow: c.crashWindowSec % 3600 === 0 ? c.crashWindowSec / 3600 : c.crashWindowSec / 60,
    crashWindowUnit: c.crashWindowSec % 3600 === 0 ? 'h' : 'min',
    livenessKind: c.liveness?.kind ?? 'off',
    livenessPort: c.liveness && c.liveness.kind !== 'agent' ? c.liveness.port : null,
    livenessPath: c.liveness?.kind === 'http' ? c.liveness.path : '/',
    ...startupWindow(c.livenessStartupSec),
    guestWatchdog: c.guestWatchdog,
    firmware: c.firmware,
    tpm: c.tpm,
    cpuModel: c.cpuModel,
    autostart: c.autostart,
    autostartOrder: c.autostartOrder,
    autostartDelay: c.autostartDelaySec,
    stopTimeout: c.stopTimeoutSec,
  };
}

function isNum(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function checkPath(errors: FieldErrors, field: string, value: string, required: boolean): string | null {
  const v = value.trim();
  if (!v) {
    if (required) errors[field] = 'Enter the absolute path of the file on the host';
    return null;
  }
  if (!v.startsWith('/')) errors[field] = 'Must be an absolute path (starting with /)';
  return v;
}

export function memoryMiB(form: VmForm): number | null {
  if (!isNum(form.memory)) return null;
  return Math.round(form.memory * (form.memoryUnit === 'GiB' ? 1024 : 1));
}

interface Common {
  name: string;
  cpus: number;
  memoryMiB: number;
  iso: string | null;
  kernel: string | null;
  initrd: string | null;
  append: string | null;
  forwards: PortForward[];
  restart: RestartPolicy;
  maxCrashes: number;
  crashWindowSec: number;
  liveness: Liveness | null;
  /** Null while the probe is off: the window is then neither checked nor sent. */
  livenessStartupSec: number | null;
  guestWatchdog: GuestWatchdog;
  tpm: boolean;
  cpuModel: string;
  autostart: boolean;
  autostartOrder: number;
  autostartDelaySec: number;
  stopTimeoutSec: number;
}

function validateCommon(form: VmForm, errors: FieldErrors): Common {
  const name = form.name.trim();
  if (!name) errors.name = 'Give the VM a name';
  else if (name.length > LIMITS.nameLength.max) errors.name = `At most ${LIMITS.nameLength.max} characters`;
  else if (name.includes('/')) errors.name = 'Must not contain “/”';
  // eslint-disable-next-line no-control-regex
  else if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) errors.name = 'Must not contain control characters';

  const cpus = form.cpus;
  if (!within(cpus, LIMITS.cpus)) errors.cpus = `A whole number from ${LIMITS.cpus.min} to ${LIMITS.cpus.max}`;

  const mem = memoryMiB(form);
  if (mem === null || mem <= 0) errors.memoryMiB = 'Enter the memory size';
  else if (mem < LIMITS.memoryMiB.min) errors.memoryMiB = `At least ${LIMITS.memoryMiB.min} MiB`;
  else if (mem > LIMITS.memoryMiB.max) errors.memoryMiB = `At most ${formatSize(LIMITS.memoryMiB.max * MiB)}`;

  const iso = checkPath(errors, 'iso', form.iso, false);
  const kernel = checkPath(errors, 'kernel', form.kernel, false);
  const initrd = checkPath(errors, 'initrd', form.initrd, false);
  if (initrd && !kernel && !errors.kernel) errors.initrd = 'An initrd needs a kernel';
  const append = form.append.trim() || null;
  // eslint-disable-next-line no-control-regex
  if (append && /[\u0000-\u001f]/.test(append)) errors.append = 'Must not contain control characters';
  if (append && append.length > 4096) errors.append = 'At most 4096 characters';
  if (append && !kernel && !errors.kernel) errors.append = 'A kernel command line needs a kernel';

  const forwards: PortForward[] = [];
  const seen = new Map<string, number>();
  form.forwards.forEach((f, i) => {
    const okPort = (p: number | null) => isNum(p) && Number.isInteger(p) && p >= 1 && p <= 65535;
    if (!okPort(f.hostPort)) errors[`forwards.${i}.hostPort`] = 'A port from 1 to 65535';
    if (!okPort(f.guestPort)) errors[`forwards.${i}.guestPort`] = 'A port from 1 to 65535';
    const key = `${f.proto}:${f.hostAddr}:${f.hostPort}`;
    if (okPort(f.hostPort) && seen.has(key)) errors[`forwards.${i}.hostPort`] = 'This host port is already forwarded';
    seen.set(key, i);
    const why = okPort(f.hostPort) ? exposure({ hostAddr: f.hostAddr, hostPort: f.hostPort ?? 0 }) : null;
    if (why && !f.exposed && !errors[`forwards.${i}.hostPort`]) errors[`forwards.${i}.exposed`] = `Exposed: ${why}`;
    forwards.push({
      proto: f.proto,
      hostAddr: f.hostAddr,
      hostPort: f.hostPort ?? 0,
      guestPort: f.guestPort ?? 0,
      exposed: !!why && f.exposed,
    });
  });

  const maxCrashes = form.maxCrashes;
  if (!within(maxCrashes, LIMITS.maxCrashes))
    errors.maxCrashes = `A whole number from ${LIMITS.maxCrashes.min} to ${LIMITS.maxCrashes.max}`;
  const windowSec = isNum(form.crashWindow) ? Math.round(form.crashWindow * (form.crashWindowUnit === 'h' ? 3600 : 60)) : NaN;
  if (!(windowSec >= LIMITS.crashWindowSec.min)) errors.crashWindowSec = `At least ${spell(LIMITS.crashWindowSec.min)}`;
  else if (windowSec > LIMITS.crashWindowSec.max) errors.crashWindowSec = `At most ${spell(LIMITS.crashWindowSec.max)}`;

  let liveness: Liveness | null = null;
  if (form.livenessKind === 'agent') liveness = { kind: 'agent' };
  else if (form.livenessKind === 'tcp' || form.livenessKind === 'http') {
    const port = form.livenessPort;
    if (!isNum(port) || !Number.isInteger(port) || port < 1 || port > 65535) errors['liveness.port'] = 'A guest port from 1 to 65535';
    if (form.livenessKind === 'tcp') liveness = { kind: 'tcp', port: port ?? 0 };
    else {
      const path = form.livenessPath.trim() || '/';
      if (!path.startsWith('/')) errors['liveness.path'] = 'Must start with “/”';
      else if (!/^[\x21-\x7e]*$/.test(path)) errors['liveness.path'] = 'A plain URL path (no spaces)';
      else if (path.length > 200) errors['liveness.path'] = 'At most 200 characters';
      liveness = { kind: 'http', port: port ?? 0, path };
    }
  }

  let startupSec: number | null = null;
  if (liveness) {
    const v = form.livenessStartup;
    startupSec = isNum(v) ? Math.round(v * (form.livenessStartupUnit === 'min' ? 60 : 1)) : NaN;
    if (!isNum(v) || v <= 0) errors.livenessStartupSec = 'Enter how long';
    else if (startupSec < LIMITS.livenessStartupSec.min) errors.livenessStartupSec = `At least ${spell(LIMITS.livenessStartupSec.min)}`;
    else if (startupSec > LIMITS.livenessStartupSec.max) errors.livenessStartupSec = `At most ${spell(LIMITS.livenessStartupSec.max)}`;
  }

  const order = form.autostartOrder;
  const delay = form.autostartDelay;
  const stopSec = form.stopTimeout;
  const range = (r: { readonly min: number; readonly max: number }) => `A whole number from ${r.min} to ${r.max}`;
  if (form.autostart && !within(order, LIMITS.autostartOrder)) errors.autostartOrder = range(LIMITS.autostartOrder);
  if (form.autostart && !within(delay, LIMITS.autostartDelaySec)) errors.autostartDelaySec = `${range(LIMITS.autostartDelaySec)} seconds`;
  if (!within(stopSec, LIMITS.stopTimeoutSec)) errors.stopTimeoutSec = `${range(LIMITS.stopTimeoutSec)} seconds`;

  return {
    autostart: form.autostart,
    autostartOrder: order ?? 0,
    autostartDelaySec: delay ?? 0,
    stopTimeoutSec: stopSec ?? 0,
    name,
    cpus: cpus ?? 0,
    memoryMiB: mem ?? 0,
    iso,
    kernel,
    initrd,
    append,
    forwards,
    restart: form.restart,
    maxCrashes: maxCrashes ?? 0,
    crashWindowSec: windowSec,
    liveness,
    livenessStartupSec: startupSec,
    guestWatchdog: form.guestWatchdog,
    tpm: form.tpm,
    cpuModel: form.cpuModel,
  };
}

export function validateCreate(form: VmForm): { errors: FieldErrors; args: ArgsIn<'vm.create'> } {
  const errors: FieldErrors = {};
  const { livenessStartupSec, ...c } = validateCommon(form, errors);
  let disk: ArgsIn<'vm.create'>['disk'] = null;
  if (form.diskMode === 'new') {
    let size = 0;
    if (!isNum(form.diskSize) || form.diskSize <= 0) errors['disk.size'] = 'Enter the disk size';
    else {
      try {
        size = parseSize(`${form.diskSize}${form.diskUnit}`);
        if (size < LIMITS.diskBytes.min) errors['disk.size'] = `At least ${formatSize(LIMITS.diskBytes.min)}`;
        else if (size > LIMITS.diskBytes.max) errors['disk.size'] = `At most ${formatSize(LIMITS.diskBytes.max)}`;
      } catch (err) {
        errors['disk.size'] = err instanceof Error ? err.message : String(err);
      }
    }
    disk = { size: Math.round(size) };
  } else if (form.diskMode === 'existing') {
    const image = checkPath(errors, 'disk.image', form.diskImage, true) ?? '';
    disk = form.diskFormat === 'auto' ? { image } : { image, format: form.diskFormat };
  }
  const firmware = form.firmware === 'auto' ? {} : { firmware: form.firmware };
  return { errors, args: { ...c, disk, ...firmware, ...(livenessStartupSec !== null ? { livenessStartupSec } : {}) } };
}

/**
 * Only what changed, so an edit never rewrites what it did not touch (a running VM takes what
 * it can at once; the host keeps the rest pending until its next start).
 */
export function validateUpdate(form: VmForm, vm: VmInfo): { errors: FieldErrors; args: ArgsIn<'vm.update'> } {
  const errors: FieldErrors = {};
  const c = validateCommon(form, errors);
  const cfg = vm.config;
  const args: ArgsIn<'vm.update'> = { vm: vm.id };
  if (c.restart !== cfg.restart) args.restart = c.restart;
  if (c.maxCrashes !== cfg.maxCrashes) args.maxCrashes = c.maxCrashes;
  if (c.crashWindowSec !== cfg.crashWindowSec) args.crashWindowSec = c.crashWindowSec;
  if (JSON.stringify(c.liveness) !== JSON.stringify(cfg.liveness)) args.liveness = c.liveness;
  if (c.livenessStartupSec !== null && c.livenessStartupSec !== cfg.livenessStartupSec) args.livenessStartupSec = c.livenessStartupSec;
  if (c.guestWatchdog !== cfg.guestWatchdog) args.guestWatchdog = c.guestWatchdog;
  if (form.firmware !== 'auto' && form.firmware !== cfg.firmware) args.firmware = form.firmware;
  if (c.tpm !== cfg.tpm) args.tpm = c.tpm;
  if (c.cpuModel !== cfg.cpuModel) args.cpuModel = c.cpuModel;
  if (c.autostart !== cfg.autostart) args.autostart = c.autostart;
  if (c.autostartOrder !== cfg.autostartOrder) args.autostartOrder = c.autostartOrder;
  if (c.autostartDelaySec !== cfg.autostartDelaySec) args.autostartDelaySec = c.autostartDelaySec;
  if (c.stopTimeoutSec !== cfg.stopTimeoutSec) args.stopTimeoutSec = c.stopTimeoutSec;
  if (c.name !== vm.name) args.name = c.name;
  if (c.cpus !== cfg.cpus) args.cpus = c.cpus;
  if (c.memoryMiB !== cfg.memoryMiB) args.memoryMiB = c.memoryMiB;
  // more than the maximum raises the maximum: said explicitly, as the host refuses
  // cpus above a set maxCpus, and memory above the boot memory of a running VM
  if (cfg.maxCpus !== null && c.cpus > cfg.maxCpus) args.maxCpus = c.cpus;
  if (isRunning(vm.state) && c.memoryMiB > bootMemoryMiB(cfg)) args.maxMemoryMiB = c.memoryMiB;
  if (c.iso !== cfg.iso) args.iso = c.iso;
  if (c.kernel !== cfg.kernel) args.kernel = c.kernel;
  if (c.initrd !== cfg.initrd) args.initrd = c.initrd;
  if (c.append !== cfg.append) args.append = c.append;
  if (
    JSON.stringify(c.forwards) !==
    JSON.stringify(
      cfg.forwards.map((f) => ({ proto: f.proto, hostAddr: f.hostAddr, hostPort: f.hostPort, guestPort: f.guestPort, exposed: f.exposed })),
    )
  ) {
    args.forwards = c.forwards;
  }
  return { errors, args };
}

export function isLiveField(field: string): boolean {
  return (LIVE_SETTINGS as readonly string[]).some((k) => field === k || field.startsWith(`${k}.`));
}

/**
 * Where a field's error goes when the host names a path we have no input for (e.g. "disk"):
 * the path is the contract's argument path (ApiError.field), taken apart at its dots.
 */
export function normalizeField(field: string, form: VmForm): string {
  const [root, index, leaf] = field.split('.');
  if (field === 'disk') return form.diskMode === 'existing' ? 'disk.image' : 'disk.size';
  // a forward as a whole, or a part of it without an input of its own: its host port
  if (root === 'forwards' && index !== undefined && (leaf === undefined || leaf === 'proto' || leaf === 'hostAddr'))
    return `forwards.${index}.hostPort`;
  if (field === 'liveness' || field === 'liveness.kind')
    return form.livenessKind === 'off' || form.livenessKind === 'agent' ? 'liveness.kind' : 'liveness.port';
  return field;
}

/** The settings inside the "Advanced" disclosure (open it to show their errors). */
const ADVANCED = [
  'kernel',
  'initrd',
  'append',
  'forwards',
  'restart',
  'maxCrashes',
  'crashWindowSec',
  'liveness',
  'guestWatchdog',
  'firmware',
  'tpm',
  'cpuModel',
  'machineType',
  'autostart',
  'stopTimeoutSec',
];

/** Whether a field (a contract argument path) is inside the "Advanced" disclosure. */
export function isAdvancedField(field: string): boolean {
  return ADVANCED.some((k) => field.startsWith(k));
}
