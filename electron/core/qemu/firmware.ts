// Which OVMF build a VM boots. QEMU's firmware descriptors (docs/interop/firmware.json) say
// what each build is; a list of known Debian/Fedora paths covers hosts that ship none. Every
// VM gets its own variables file, copied from the template as qcow2: a raw pflash would block
// QEMU's internal snapshots of the VM.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Firmware } from '../api/contract.js';
import { qemuImgBinary } from './img.js';

const run = promisify(execFile);

export interface UefiFirmware {
  /** The read-only firmware image (pflash0). */
  code: string;
  /** The variables file a new VM's copy starts from. */
  varsTemplate: string;
  /** Secure boot: q35 with SMM and a secure pflash. */
  secure: boolean;
}

/** Searched in this order; a file name in an earlier dir hides the same name in a later one. */
export const DESCRIPTOR_DIRS = ['/etc/qemu/firmware', '/usr/share/qemu/firmware'];

/** Known builds, used when no descriptor matches (code, vars template). */
const FALLBACK: Record<'uefi' | 'uefi-secure', Array<[string, string]>> = {
  uefi: [
    ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'],
    ['/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/OVMF/OVMF_VARS.fd'],
    ['/usr/share/edk2/ovmf/OVMF_CODE.fd', '/usr/share/edk2/ovmf/OVMF_VARS.fd'],
    ['/usr/share/edk2-ovmf/x64/OVMF_CODE.fd', '/usr/share/edk2-ovmf/x64/OVMF_VARS.fd'],
  ],
  'uefi-secure': [
    ['/usr/share/OVMF/OVMF_CODE_4M.secboot.fd', '/usr/share/OVMF/OVMF_VARS_4M.ms.fd'],
    ['/usr/share/OVMF/OVMF_CODE.secboot.fd', '/usr/share/OVMF/OVMF_VARS.ms.fd'],
    ['/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd', '/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd'],
    ['/usr/share/edk2-ovmf/x64/OVMF_CODE.secboot.fd', '/usr/share/edk2-ovmf/x64/OVMF_VARS.secboot.fd'],
  ],
};

interface Descriptor {
  'interface-types'?: unknown;
  mapping?: {
    device?: unknown;
    mode?: unknown;
    executable?: { filename?: unknown; format?: unknown };
    'nvram-template'?: { filename?: unknown; format?: unknown };
  };
  targets?: Array<{ architecture?: unknown; machines?: unknown }>;
  features?: unknown;
}

/** Features that need more than Corral's q35 (confidential guests) or change what a build is. */
const UNWANTED = ['amd-sev-es', 'amd-sev-snp', 'intel-tdx'];

/** Whether a descriptor describes a q35 x86_64 flash build of the wanted kind. */
export function matches(d: Descriptor, kind: 'uefi' | 'uefi-secure'): UefiFirmware | null {
  const m = d.mapping;
  if (!Array.isArray(d['interface-types']) || !d['interface-types'].includes('uefi')) return null;
  if (!m || m.device !== 'flash' || (m.mode !== undefined && m.mode !== 'split')) return null;
  const code = m.executable?.filename;
  const vars = m['nvram-template']?.filename;
  if (typeof code !== 'string' || typeof vars !== 'string') return null;
  if ((m.executable?.format ?? 'raw') !== 'raw' || (m['nvram-template']?.format ?? 'raw') !== 'raw') return null;
  const q35 = (d.targets ?? []).some(
    (t) =>
      t.architecture === 'x86_64' &&
      Array.isArray(t.machines) &&
      t.machines.some((p) => typeof p === 'string' && /^(pc-q35-\*|\*|q35)$/.test(p)),
  );
  if (!q35) return null;
  const features = Array.isArray(d.features) ? (d.features as unknown[]) : [];
  if (features.some((f) => UNWANTED.includes(String(f)))) return null;
  const secure = features.includes('secure-boot');
  if (kind === 'uefi-secure' && !(secure && features.includes('enrolled-keys') && features.includes('requires-smm'))) return null;
  if (kind === 'uefi' && (secure || features.includes('requires-smm'))) return null;
  return { code, varsTemplate: vars, secure };
}

/** The descriptors in QEMU's order: by file name, /etc hiding /usr/share. */
function descriptors(dirs: readonly string[]): Descriptor[] {
  const byName = new Map<string, string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
    } catch {
      continue;
    }
    for (const n of names) if (!byName.has(n)) byName.set(n, path.join(dir, n));
  }
  const out: Descriptor[] = [];
  for (const name of [...byName.keys()].sort()) {
    try {
      out.push(JSON.parse(fs.readFileSync(byName.get(name)!, 'utf8')) as Descriptor);
    } catch {
      // a broken descriptor is skipped, as QEMU's own tools do
    }
  }
  return out;
}

const readable = (f: string) => {
  try {
    fs.accessSync(f, fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
};

/** The OVMF build for `kind`, or an error that says what to install. */
export function findUefi(kind: 'uefi' | 'uefi-secure', dirs: readonly string[] = DESCRIPTOR_DIRS): UefiFirmware {
  for (const d of descriptors(dirs)) {
    const fw = matches(d, kind);
    if (fw && readable(fw.code) && readable(fw.varsTemplate)) return fw;
  }
  for (const [code, varsTemplate] of FALLBACK[kind]) {
    if (readable(code) && readable(varsTemplate)) return { code, varsTemplate, secure: kind === 'uefi-secure' };
  }
  const what = kind === 'uefi-secure' ? 'UEFI firmware with secure boot and Microsoft keys' : 'UEFI firmware';
  throw new Error(`no ${what} (OVMF) found on this host: install it (Debian/Ubuntu: sudo apt install ovmf)`);
}

/** The firmware a config boots (null: the BIOS QEMU has built in). */
export function resolveFirmware(kind: Firmware, dirs?: readonly string[]): UefiFirmware | null {
  return kind === 'bios' ? null : findUefi(kind, dirs);
}

/** Gives a VM its own variables file, a qcow2 copy of the template, unless it has one. */
export async function ensureVarsFile(fw: UefiFirmware, file: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (fs.existsSync(file)) return;
  const temp = `${file}.new`;
  try {
    await run(qemuImgBinary(env), ['convert', '-q', '-f', 'raw', '-O', 'qcow2', fw.varsTemplate, temp], { timeout: 60_000 });
    fs.chmodSync(temp, 0o600);
    fs.renameSync(temp, file); // whole or not at all
  } catch (err) {
    fs.rmSync(temp, { force: true });
    const why = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
    throw new Error(`could not create the UEFI variables file from ${fw.varsTemplate}: ${why}`);
  }
}
