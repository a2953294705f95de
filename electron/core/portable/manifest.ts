// The bundle's manifest.json: what `corral vm export` writes first and `vm import` checks
// before it reads anything else. Version 1; an unknown version is refused, never guessed at.
import { z } from 'zod';
import { LIMITS } from '../api/rules.js';
import { CONFIG_DEFAULTS, VmConfig, VmName } from '../api/schemas.js';
import { BundleError, checkEntryName } from './tar.js';

export const MANIFEST = 'manifest.json';
export const BUNDLE_FORMAT = 'corral-vm';
export const BUNDLE_VERSION = 1;
/** A manifest is small; anything larger is not one. */
export const MANIFEST_MAX_BYTES = 1 << 20;
/** Vars files and TPM state are small; a disk's file is at most the largest disk. */
const SMALL_FILE_MAX = 64 << 20;

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in hex');
const EntryName = z.string().transform((s, ctx) => {
  try {
    return checkEntryName(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});
const Bytes = (max: number) => z.number().int().min(0).max(max, `is larger than Corral accepts (${max} bytes)`);

export const BundleFile = z.object({ file: EntryName, size: Bytes(SMALL_FILE_MAX), sha256: Sha256 });
export const BundleDisk = z.object({
  file: EntryName,
  /** The guest's view: the disk's virtual size. */
  virtualSize: Bytes(LIMITS.diskBytes.max),
  /** The qcow2 file's own length in the archive. */
  size: Bytes(LIMITS.diskBytes.max),
  sha256: Sha256,
});

/**
 * The settings, each with its default: a bundle from an older Corral lacks the settings added
 * since, and takes their defaults. Shared folders are host paths and never travel in a bundle.
 */
const BundleSettings = VmConfig.omit({ disks: true, shares: true });
const BundleConfig = z.object(
  Object.fromEntries(
    Object.entries(BundleSettings.shape).map(([k, schema]) => [
      k,
      (schema as z.ZodType).default(CONFIG_DEFAULTS[k as keyof typeof CONFIG_DEFAULTS] as never),
    ]),
  ) as { [K in keyof typeof BundleSettings.shape]: z.ZodDefault<(typeof BundleSettings.shape)[K]> },
);

export const Manifest = z.object({
  format: z.literal(BUNDLE_FORMAT),
  version: z.literal(BUNDLE_VERSION),
  name: VmName,
  exportedAt: z.number(),
  /** The settings, without host paths of disks (those are the bundle's own files). */
  config: BundleConfig,
  machineType: z.string().nullable(),
  cpuModel: z.string(),
  firmware: z.string(),
  tpm: z.boolean(),
  disks: z.array(BundleDisk).max(LIMITS.disks.max),
  /** The UEFI variables file (efivars.qcow2), when the VM has one. */
  efiVars: BundleFile.nullable(),
  /** The TPM's state files (tpm/…). */
  tpmState: z
    .array(BundleFile.refine((f) => /^tpm\/[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(f.file), 'TPM state files must be tpm/NAME'))
    .max(16),
});
export type Manifest = z.infer<typeof Manifest>;

/** Parses and checks a manifest; the error names the field at fault. */
export function parseManifest(raw: Buffer): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new BundleError('manifest.json is not valid JSON');
  }
  const head = json as { format?: unknown; version?: unknown };
  if (head?.format !== BUNDLE_FORMAT) throw new BundleError('manifest.json is not a Corral VM bundle manifest');
  if (typeof head.version === 'number' && head.version > BUNDLE_VERSION)
    throw new BundleError(
      `the bundle is format version ${head.version}; this Corral reads version ${BUNDLE_VERSION}: import it with a newer Corral`,
    );
  const r = Manifest.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new BundleError(`manifest.json: ${issue.path.join('.') || 'manifest'}: ${issue.message}`);
  }
  const names = [
    ...r.data.disks.map((d) => d.file),
    ...(r.data.efiVars ? [r.data.efiVars.file] : []),
    ...r.data.tpmState.map((f) => f.file),
  ];
  const dup = names.find((n, i) => names.indexOf(n) !== i || n === MANIFEST);
  if (dup) throw new BundleError(`manifest.json names "${dup}" twice`);
  return r.data;
}

/** Every file the manifest lists, with its declared size and hash. */
export function listedFiles(m: Manifest): Array<{ file: string; size: number; sha256: string }> {
  return [...m.disks, ...(m.efiVars ? [m.efiVars] : []), ...m.tpmState];
}
