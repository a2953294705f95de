// The bundle's manifest.json: what `corral vm export` writes first and `vm import` checks
// before it reads anything else. Version 1: flattened disks; version 2: the same plus the
// snapshot tree (written only when a bundle carries one, so that older Corrals still read
// every flattened bundle and refuse, rather than silently drop, a tree). An unknown version
// is refused, never guessed at.
import { z } from 'zod';
import { LIMITS } from '../api/rules.js';
import { VmName } from '../api/schemas.js';
import { BundleConfig, BundleDisk, BundleFile } from './manifest-parts.js';
import { BundleSnapshots, checkSnapshotSection } from './manifest-snapshots.js';
import { BundleError } from './tar.js';

export const MANIFEST = 'manifest.json';
export const BUNDLE_FORMAT = 'corral-vm';
/** The newest version this Corral reads and writes (with snapshots); flattened bundles stay version 1. */
export const BUNDLE_VERSION = 2;
export const FLAT_BUNDLE_VERSION = 1;
/** A manifest is small (a tree of a thousand snapshots with their configs fits); anything larger is not one. */
export const MANIFEST_MAX_BYTES = 8 << 20;
export const Manifest = z.object({
  format: z.literal(BUNDLE_FORMAT),
  version: z.union([z.literal(FLAT_BUNDLE_VERSION), z.literal(BUNDLE_VERSION)]),
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
  /** The snapshot tree (version 2, `vm export --snapshots`): the disks then keep their internal snapshots. */
  snapshots: BundleSnapshots.optional(),
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
      `the bundle is format version ${head.version}; this Corral reads versions up to ${BUNDLE_VERSION}: import it with a newer Corral`,
    );
  const r = Manifest.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new BundleError(`manifest.json: ${issue.path.join('.') || 'manifest'}: ${issue.message}`);
  }
  if (r.data.snapshots && r.data.version < BUNDLE_VERSION)
    throw new BundleError(`manifest.json: snapshots: a version ${r.data.version} bundle carries no snapshots`);
  if (r.data.snapshots) checkSnapshotSection(r.data.snapshots, r.data.disks.length, r.data.efiVars !== null);
  const names = listedFiles(r.data).map((f) => f.file);
  const dup = names.find((n, i) => names.indexOf(n) !== i || n === MANIFEST);
  if (dup) throw new BundleError(`manifest.json names "${dup}" twice`);
  return r.data;
}

/** Every file the manifest lists, with its declared size and hash. */
export function listedFiles(m: Manifest): Array<{ file: string; size: number; sha256: string }> {
  return [...m.disks, ...(m.efiVars ? [m.efiVars] : []), ...m.tpmState, ...(m.snapshots?.list.flatMap((s) => s.tpmState) ?? [])];
}
