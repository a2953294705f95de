// The shapes of the host itself: its storage pools and their files, its settings, and what it
// says about itself (version, QEMU, features). schemas.ts re-exports them.
import { z } from 'zod';

/** A storage pool's name: what the CLI and the page call it. */
export const PoolName = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, ".", "_" or "-", starting with a letter or digit');

/** A directory registered as the only place VM files (disks, ISOs, kernels, initrds) may come from. */
export const Pool = z.object({
  name: z.string(),
  /** The directory's real path. */
  path: z.string(),
  /** The data dir's images folder: always there, where new disks and uploads go by default. */
  isDefault: z.boolean(),
  /** Every host of the cluster reaches it at the same path (an NFS mount, say): HA VMs live here. */
  shared: z.boolean(),
  /** Free space on its file system (null: unknown). */
  freeBytes: z.number().nullable(),
  /** VMs with a file in it. */
  usedBy: z.array(z.string()),
});

/** What a pool file is, from its first bytes (kernel, initrd: Linux boot files). */
export const PoolFileKind = z.enum(['iso', 'qcow2', 'raw', 'kernel', 'initrd', 'other']);

export const PoolFile = z.object({
  name: z.string(),
  /** Its path: what a VM's iso/kernel/initrd/disk image names. */
  path: z.string(),
  size: z.number(),
  format: PoolFileKind,
  mtime: z.number(),
});

/** A file uploaded into a pool (HTTP PUT in corral serve), with the SHA-256 of what arrived. */
export const UploadedFile = PoolFile.extend({ sha256: z.string() });

export const QuitAction = z.enum(['ask', 'leave-running', 'stop-guests']);
export const HostSettings = z.object({
  /** What quitting the desktop app does with running guests. */
  quitAction: QuitAction,
  /** Host shell terminals; null = the host's default (on in the desktop app, off in corral serve). */
  hostShell: z.boolean().nullable(),
  /** The read-only QEMU monitor console; null = the host's default (on in the desktop app, off in serve). */
  monitor: z.boolean().nullable(),
  /** Running VMs may commit at most host RAM x this much memory. */
  memoryOvercommit: z.number().min(0.1, 'must be at least 0.1').max(10, 'must be at most 10'),
});

export const HostInfo = z.object({
  version: z.string(),
  dataDir: z.string(),
  pid: z.number().int(),
  qemu: z.object({
    binary: z.string(),
    version: z.string(),
    accel: z.enum(['kvm', 'tcg']),
    /** Set when acceleration fell back (e.g. KVM present but broken). */
    warning: z.string().nullable(),
    /** The unprivileged user QEMU drops to when the host runs as root; null: the host's own user. */
    runsAs: z.string().nullable(),
  }),
  settings: HostSettings,
  /** What this host allows right now (settings applied to the host's defaults). */
  features: z.object({ hostShell: z.boolean(), monitor: z.boolean() }),
});

export type HostInfo = z.infer<typeof HostInfo>;
export type HostSettings = z.infer<typeof HostSettings>;
export type Pool = z.infer<typeof Pool>;
export type PoolFile = z.infer<typeof PoolFile>;
export type PoolFileKind = z.infer<typeof PoolFileKind>;
export type UploadedFile = z.infer<typeof UploadedFile>;
