// The pieces of a bundle's manifest shared by its sections: file entries with their hashes,
// and the settings of a VM (the VM's own and each snapshot's) without host paths.
import { z } from 'zod';
import { LIMITS } from '../api/rules.js';
import { CONFIG_DEFAULTS, VmConfig } from '../api/schemas.js';
import { checkEntryName } from './tar.js';

/** Vars files and TPM state are small; a disk's file is at most the largest disk. */
export const SMALL_FILE_MAX = 64 << 20;

export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in hex');
export const EntryName = z.string().transform((s, ctx) => {
  try {
    return checkEntryName(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});
export const Bytes = (max: number) => z.number().int().min(0).max(max, `is larger than Corral accepts (${max} bytes)`);

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
export const BundleConfig = z.object(
  Object.fromEntries(
    Object.entries(BundleSettings.shape).map(([k, schema]) => [
      k,
      (schema as z.ZodType).default(CONFIG_DEFAULTS[k as keyof typeof CONFIG_DEFAULTS] as never),
    ]),
  ) as { [K in keyof typeof BundleSettings.shape]: z.ZodDefault<(typeof BundleSettings.shape)[K]> },
);
