// The shapes of snapshots: a tree per VM, what each one holds and how consistent it is, the
// schedule, and the progress of a running snapshot job. contract.ts re-exports them.
import { z } from 'zod';
import { VmConfig } from './schemas.js';

/** Snapshot names are typed by people and scripts: short, printable, never a path. */
export const SnapshotName = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9 ._:+-]*$/, 'must be letters, digits, spaces, ".", "_", ":", "+" or "-", starting with a letter or digit')
  .refine((s) => s.trim() === s, 'must not start or end with a space');

export const SnapshotDescription = z
  .string()
  .max(1000, 'must be at most 1000 characters')
  // eslint-disable-next-line no-control-regex
  .refine((s) => !/[\u0000-\u0009\u000b-\u001f\u007f]/.test(s), 'must not contain control characters');

/**
 * live: RAM and disks of a running guest; disk: disks only of a running guest; offline: taken
 * with qemu-img while the VM was stopped.
 */
export const SnapshotKind = z.enum(['live', 'disk', 'offline']);

/**
 * full: RAM and disks together (the guest resumes exactly there); frozen: disks after the guest
 * agent flushed and froze the file systems; crash: disks as after a power cut (no agent
 * answered); offline: disks of a stopped VM.
 */
export const Consistency = z.enum(['full', 'frozen', 'crash', 'offline']);

export const SnapshotInfo = z.object({
  /** Also the tag of the internal qcow2 snapshot in each disk and the variables file. */
  id: z.string(),
  vmId: z.string(),
  parentId: z.string().nullable(),
  name: z.string(),
  description: z.string(),
  createdAt: z.number(),
  hasRam: z.boolean(),
  kind: SnapshotKind,
  consistency: Consistency,
  /** How long the guest's vCPUs stood still for it (STOP to RESUME), null where they did not. */
  pauseMs: z.number().nullable(),
  /** Taken by the VM's schedule (only these are removed by its retention). */
  scheduled: z.boolean(),
  /** The UEFI variables and the TPM state are kept with it. */
  withVars: z.boolean(),
  withTpm: z.boolean(),
  /** The config the VM had when it was taken. */
  config: VmConfig,
});

/** Every N seconds, keep the newest `keep` scheduled snapshots. */
export const SnapshotSchedule = z.object({
  everySec: z
    .number()
    .int()
    .min(60, 'must be at least 60 s')
    .max(365 * 86400, 'must be at most a year'),
  keep: z.number().int().min(1, 'must be at least 1').max(1000, 'must be at most 1000'),
});

export const SnapshotTree = z.object({
  /** Oldest first; parents before their children. */
  snapshots: z.array(SnapshotInfo),
  /** "You are here": the snapshot the VM's current state descends from (null: none yet). */
  currentId: z.string().nullable(),
  schedule: SnapshotSchedule.extend({ nextAt: z.number().nullable() }).nullable(),
});

/** A snapshot job under way: pushed while QEMU (or qemu-img) works, ending with done true. */
export const SnapshotProgress = z.object({
  vmId: z.string(),
  op: z.enum(['create', 'revert', 'delete']),
  snapshot: z.string(),
  /** What it is doing now, for a progress line ("saving RAM and disks"). */
  phase: z.string(),
  /** QEMU's job progress (current/total), where it reports one. */
  current: z.number(),
  total: z.number(),
  done: z.boolean(),
  error: z.string().nullable(),
});

export type SnapshotInfo = z.infer<typeof SnapshotInfo>;
export type SnapshotKind = z.infer<typeof SnapshotKind>;
export type Consistency = z.infer<typeof Consistency>;
export type SnapshotSchedule = z.infer<typeof SnapshotSchedule>;
export type SnapshotTree = z.infer<typeof SnapshotTree>;
export type SnapshotProgress = z.infer<typeof SnapshotProgress>;
