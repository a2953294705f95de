// The snapshot section of a bundle's manifest (`vm export --snapshots`): the tree with each
// snapshot's metadata and the config it was taken with, which bundle disks hold its qcow2 tag,
// and its copy of the TPM state. Checked as a whole before anything is extracted: every
// parent known, no cycle, a sane count, files only where the snapshot says it kept them.
import { z } from 'zod';
import { Consistency, SnapshotDescription, SnapshotKind, SnapshotName } from '../api/snapshot-schemas.js';
import { BundleConfig, BundleFile } from './manifest-parts.js';
import { BundleError } from './tar.js';

/** More snapshots than a schedule keeps (1000) plus some taken by hand is not a real tree. */
export const MAX_BUNDLE_SNAPSHOTS = 1024;

/** A snapshot's id, which is also its tag in the qcow2 files: what Corral makes, nothing else. */
export const SnapshotTag = z.string().regex(/^s[0-9a-f]{12}$/, 'must be a snapshot id Corral made (s and 12 hex digits)');

export const BundleSnapshot = z.object({
  id: SnapshotTag,
  parentId: SnapshotTag.nullable(),
  name: SnapshotName,
  description: SnapshotDescription,
  createdAt: z.number().int().min(0),
  hasRam: z.boolean(),
  kind: SnapshotKind,
  consistency: Consistency,
  pauseMs: z.number().int().min(0).nullable(),
  scheduled: z.boolean(),
  withVars: z.boolean(),
  withTpm: z.boolean(),
  /** The settings it was taken with (no host paths of disks or shared folders). */
  config: BundleConfig,
  /** The bundle's disks (by index) that hold its tag. */
  disks: z.array(z.number().int().min(0)).max(64),
  /** Its copy of the TPM state: snapshots/ID/tpm/NAME. */
  tpmState: z.array(BundleFile).max(16),
});
export type BundleSnapshot = z.infer<typeof BundleSnapshot>;

export const BundleSnapshots = z.object({
  /** "You are here": the snapshot the exported state descends from. */
  currentId: SnapshotTag.nullable(),
  list: z.array(BundleSnapshot).max(MAX_BUNDLE_SNAPSHOTS, `must hold at most ${MAX_BUNDLE_SNAPSHOTS} snapshots`),
});
export type BundleSnapshots = z.infer<typeof BundleSnapshots>;

/** Where a snapshot's TPM state file goes in the archive. */
export const snapshotTpmEntry = (id: string, name: string) => `snapshots/${id}/tpm/${name}`;

/** The tree's own rules, beyond each field's shape; the error names the snapshot at fault. */
export function checkSnapshotSection(s: BundleSnapshots, diskCount: number, hasVars: boolean): void {
  const fail = (i: number, why: string): never => {
    throw new BundleError(`manifest.json: snapshots.list.${i} ("${s.list[i]!.name}"): ${why}`);
  };
  const byId = new Map<string, number>();
  const names = new Set<string>();
  s.list.forEach((snap, i) => {
    if (byId.has(snap.id)) fail(i, `the id ${snap.id} appears twice`);
    if (names.has(snap.name.toLowerCase())) fail(i, 'the name appears twice');
    byId.set(snap.id, i);
    names.add(snap.name.toLowerCase());
  });
  s.list.forEach((snap, i) => {
    if (snap.parentId !== null && !byId.has(snap.parentId)) fail(i, `its parent ${snap.parentId} is not in the bundle`);
  });
  s.list.forEach((snap, i) => {
    const bad = snap.disks.find((d, k) => d >= diskCount || snap.disks.indexOf(d) !== k);
    if (bad !== undefined) fail(i, `names disk ${bad}, which the bundle does not have (or names it twice)`);
    if (snap.hasRam && !snap.disks.includes(0)) fail(i, 'holds RAM, which lives in disk 0, but disk 0 does not hold it');
    if (snap.withVars && !hasVars) fail(i, 'keeps UEFI variables, but the bundle has no variables file');
    if (!snap.withTpm && snap.tpmState.length) fail(i, 'lists TPM state but says it kept none');
    if (snap.withTpm && !snap.tpmState.length) fail(i, 'says it kept the TPM state but lists none');
    const prefix = snapshotTpmEntry(snap.id, '');
    const stray = snap.tpmState.find((f) => !f.file.startsWith(prefix) || f.file.slice(prefix.length).includes('/'));
    if (stray) fail(i, `its TPM state file "${stray.file}" must be ${prefix}NAME`);
    // a cycle: following parents from here comes back before reaching a root
    let at: string | null = snap.parentId;
    for (let steps = 0; at !== null; steps++) {
      if (at === snap.id || steps > s.list.length) fail(i, 'its parents form a cycle');
      at = s.list[byId.get(at)!]!.parentId;
    }
  });
  if (s.currentId !== null && !byId.has(s.currentId))
    throw new BundleError(`manifest.json: snapshots.currentId: ${s.currentId} is not in the bundle`);
}
