// Host capability probe: which QEMU, which version, and which accelerator really runs a
// guest. KVM is used only after a tiny guest has run under it: a /dev/kvm that exists but
// aborts (MSR errors) or hangs silently must end on TCG, visibly, never on a hung VM.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface QemuCaps extends MachineCatalog {
  binary: string;
  version: string;
  accel: 'kvm' | 'tcg';
  warning: string | null;
}

/** What virtual hardware this QEMU can build: a VM's pinned machine type and CPU model must be here. */
export interface MachineCatalog {
  /** Every machine type by its full name (pc-q35-7.2…), aliases resolved. */
  machineTypes: string[];
  /** What the q35 alias stands for in this QEMU: the type a new VM is pinned to. */
  q35: string;
  cpuModels: string[];
}

/** Parses `-machine help`: "name  description (alias of pc-q35-7.2)". */
export function parseMachineHelp(text: string): { types: string[]; aliases: Record<string, string> } {
  const types: string[] = [];
  const aliases: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+.*?(?:\(alias of (\S+)\))?\s*$/.exec(line);
    if (!m || line.startsWith('Supported machines')) continue;
    if (m[2]) aliases[m[1]!] = m[2];
    else types.push(m[1]!);
  }
  return { types, aliases };
}

/** Parses `-cpu help`: "x86 Westmere-v1   Westmere E56xx…", up to the feature list. */
export function parseCpuHelp(text: string): string[] {
  const models: string[] = [];
  for (const line of text.split('\n')) {
    if (/^\s*$/.test(line) && models.length) break; // the feature flags follow a blank line
    const m = /^x86\s+(\S+)/.exec(line);
    if (m) models.push(m[1]!);
  }
  return models;
}

export async function machineCatalog(binary: string): Promise<MachineCatalog> {
  const [machines, cpus] = await Promise.all([
    run(binary, ['-machine', 'help'], { timeout: 10_000 }),
    run(binary, ['-cpu', 'help'], { timeout: 10_000 }),
  ]);
  const { types, aliases } = parseMachineHelp(machines.stdout);
  const q35 =
    aliases.q35 ??
    types
      .filter((t) => t.startsWith('pc-q35-'))
      .sort(byVersion)
      .at(-1);
  if (!q35) throw new Error(`${binary} has no q35 machine type: Corral needs one`);
  return { machineTypes: types, q35, cpuModels: parseCpuHelp(cpus.stdout) };
}

function byVersion(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

export function findQemu(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CORRAL_QEMU) return env.CORRAL_QEMU;
  for (const dir of (env.PATH ?? '/usr/bin:/bin').split(':')) {
    const candidate = path.join(dir || '.', 'qemu-system-x86_64');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  throw new Error('qemu-system-x86_64 not found: install QEMU (Debian/Ubuntu: sudo apt install qemu-system-x86 qemu-utils)');
}

export async function qemuVersion(binary: string): Promise<string> {
  const { stdout } = await run(binary, ['-version'], { timeout: 10_000 });
  const m = /version (\d+\.\d+(?:\.\d+)?)/.exec(stdout);
  if (!m) throw new Error(`could not read the version of ${binary}: ${stdout.split('\n')[0]}`);
  return m[1]!;
}

// A 1 MiB disk whose boot sector writes 0x10 to isa-debug-exit: QEMU exits with (0x10<<1)|1.
const PROBE_EXIT = 33;
function probeDisk(): Buffer {
  const disk = Buffer.alloc(1024 * 1024);
  Buffer.from([0xba, 0xf4, 0x00, 0xb0, 0x10, 0xee, 0xf4, 0xeb, 0xfd]).copy(disk); // mov dx,0xf4; mov al,0x10; out; hlt; jmp
  disk[510] = 0x55;
  disk[511] = 0xaa;
  return disk;
}

/** Boots the probe guest under `accel`; true only if the guest's code really ran. */
export async function guestRuns(binary: string, accel: 'kvm' | 'tcg', timeoutMs = 3000): Promise<{ ok: boolean; detail: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-probe-'));
  const disk = path.join(dir, 'probe.img');
  fs.writeFileSync(disk, probeDisk());
  const args = [
    '-machine',
    `q35,accel=${accel}`,
    ...(accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-m',
    '32',
    '-device',
    'isa-debug-exit,iobase=0xf4,iosize=0x04',
    '-blockdev',
    JSON.stringify({ driver: 'file', filename: disk, 'node-name': 'f' }),
    '-blockdev',
    JSON.stringify({ driver: 'raw', file: 'f', 'node-name': 'd' }),
    '-device',
    JSON.stringify({ driver: 'ide-hd', drive: 'd', bus: 'ide.0', bootindex: 0 }),
  ];
  try {
    return await new Promise((resolve) => {
      const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()).length > 4096 && (stderr = stderr.slice(-4096)));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve({ ok: false, detail: `the test guest did not finish within ${timeoutMs} ms` });
      }, timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        resolve({ ok: false, detail: err.message });
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === PROBE_EXIT) resolve({ ok: true, detail: 'ok' });
        else {
          const last = stderr.trim().split('\n').filter(Boolean).slice(0, 2).join('; ');
          resolve({ ok: false, detail: last || `QEMU exited with ${signal ?? code}` });
        }
      });
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface ProbeOptions {
  env?: NodeJS.ProcessEnv;
  /** JSON cache file: the KVM check costs up to a few seconds, so it runs once per QEMU/kernel. */
  cacheFile?: string;
}

export async function probeQemu(opts: ProbeOptions = {}): Promise<QemuCaps> {
  const env = opts.env ?? process.env;
  const binary = findQemu(env);
  const { version, ...catalog } = await describeQemu(binary, opts.cacheFile);
  const forced = env.CORRAL_ACCEL;
  if (forced === 'tcg') return { binary, version, ...catalog, accel: 'tcg', warning: null };
  if (forced && forced !== 'kvm' && forced !== 'auto') throw new Error(`CORRAL_ACCEL must be kvm, tcg or auto, not "${forced}"`);
  if (forced === 'kvm') return { binary, version, ...catalog, accel: 'kvm', warning: null };

  if (!kvmUsable()) {
    return {
      binary,
      version,
      ...catalog,
      accel: 'tcg',
      warning: 'KVM is not available (/dev/kvm missing or not accessible): guests run under software emulation (TCG), much slower.',
    };
  }
  const key = `${binary}|${version}|${os.release()}|${fs.statSync(binary).mtimeMs}`;
  const cached = readCache(opts.cacheFile, 'kvm', key, (v) =>
    typeof v.ok === 'boolean' ? { ok: v.ok, detail: String(v.detail ?? '') } : null,
  );
  const result = cached ?? (await guestRuns(binary, 'kvm'));
  if (!cached) writeCache(opts.cacheFile, 'kvm', key, result);
  if (result.ok) return { binary, version, ...catalog, accel: 'kvm', warning: null };
  return {
    binary,
    version,
    ...catalog,
    accel: 'tcg',
    warning: `KVM is present but could not run a test guest (${result.detail}): guests run under software emulation (TCG), much slower. Set CORRAL_ACCEL=kvm to force KVM.`,
  };
}

/**
 * The version and catalog of this QEMU binary: three runs of QEMU, which cost a host start
 * about as much as starting a guest, so they are kept until the binary changes (an upgrade
 * replaces the file: a new inode, size or time).
 */
async function describeQemu(binary: string, cacheFile: string | undefined): Promise<{ version: string } & MachineCatalog> {
  const st = fs.statSync(binary);
  const key = `${binary}|${st.ino}|${st.size}|${st.mtimeMs}|${st.ctimeMs}`;
  const cached = readCache(cacheFile, 'qemu', key, (v) =>
    typeof v.version === 'string' && typeof v.q35 === 'string' && Array.isArray(v.machineTypes) && Array.isArray(v.cpuModels)
      ? { version: v.version, q35: v.q35, machineTypes: v.machineTypes.map(String), cpuModels: v.cpuModels.map(String) }
      : null,
  );
  if (cached) return cached;
  const [version, catalog] = await Promise.all([qemuVersion(binary), machineCatalog(binary)]);
  writeCache(cacheFile, 'qemu', key, { version, ...catalog });
  return { version, ...catalog };
}

function kvmUsable(): boolean {
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

type Entry = Record<string, unknown>;

/** One section of the cache file, if its key still matches and `check` accepts it. */
function readCache<T>(file: string | undefined, section: string, key: string, check: (v: Entry) => T | null): T | null {
  if (!file) return null;
  try {
    const entry = (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, Entry | undefined>)[section];
    if (entry && entry.key === key) return check(entry);
  } catch {
    // missing or unreadable: probe again
  }
  return null;
}

function writeCache(file: string | undefined, section: string, key: string, value: object): void {
  if (!file) return;
  try {
    let all: Record<string, unknown> = {};
    try {
      const old = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
      if (old && typeof old === 'object' && !Array.isArray(old)) all = old as Record<string, unknown>;
    } catch {
      // none yet
    }
    all[section] = { key, ...value };
    fs.writeFileSync(file, JSON.stringify(all), { mode: 0o600 });
  } catch {
    // a cache is only a cache
  }
}
