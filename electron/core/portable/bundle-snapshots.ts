// A VM's snapshot tree in a bundle (`vm export --snapshots`). The disks and the UEFI variables
// travel as the qcow2 files they are, internal snapshots included (never with a backing file),
// the tree's rows as the manifest's snapshot section and each snapshot's TPM copy as files.
// Import checks that every disk holds the tags the section says it does before the VM
// appears, then recreates the rows under the new VM with the same ids (the qcow2 tags).
import fs from 'node:fs';
import path from 'node:path';
import type { SnapshotInfo, VmConfig } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { ensurePrivateDir } from '../private-files.js';
import { imgSnapshotTags } from '../qemu/img-snapshots.js';
import type { SnapshotRepo } from '../store/snapshot-repo.js';
import type { VmContext } from '../vms/context.js';
import { places } from '../vms/snapshot-files.js';
import { treeOrder } from '../vms/snapshot-tree.js';
import { snapshotTpmEntry, type BundleSnapshots } from './manifest-snapshots.js';
import { BundleError } from './tar.js';

export interface TreeExport {
  /** The section, with each TPM file's hash filled in by `h` once the archive is written. */
  section: (h: (entry: string) => string) => BundleSnapshots;
  /** The snapshots' TPM state files to put in the archive. */
  files: Array<{ src: string; entry: string; size: number }>;
}

/** What the bundle says about a VM's snapshots: `disks` and `vars` are the files as exported. */
export async function exportTree(
  ctx: VmContext,
  repo: SnapshotRepo,
  vmId: string,
  disks: string[],
  vars: string | null,
): Promise<TreeExport> {
  const snaps = treeOrder(repo.list(vmId)).map((n) => n.snap);
  const tags = await Promise.all(disks.map((d) => imgSnapshotTags(d, ctx.env).then((t) => new Set(t))));
  const varTags = vars ? new Set(await imgSnapshotTags(vars, ctx.env)) : new Set<string>();
  const p = places(ctx.vmDir(vmId));
  const files: TreeExport['files'] = [];
  const tpmOf = new Map<string, string[]>();
  for (const s of snaps) {
    const dir = p.tpmCopy(s.id);
    const names = s.withTpm && fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(n)) : [];
    const plain = names.filter((n) => fs.statSync(path.join(dir, n)).isFile());
    tpmOf.set(s.id, plain);
    for (const n of plain)
      files.push({ src: path.join(dir, n), entry: snapshotTpmEntry(s.id, n), size: fs.statSync(path.join(dir, n)).size });
  }
  const section = (h: (entry: string) => string): BundleSnapshots => ({
    currentId: repo.head(vmId).currentId,
    list: snaps.map((s) => {
      const { disks: _d, shares: _s, ...config } = s.config;
      const tpm = tpmOf.get(s.id)!;
      return {
        id: s.id,
        parentId: s.parentId,
        name: s.name,
        description: s.description,
        createdAt: s.createdAt,
        hasRam: s.hasRam,
        kind: s.kind,
        consistency: s.consistency,
        pauseMs: s.pauseMs,
        scheduled: s.scheduled,
        withVars: s.withVars && varTags.has(s.id),
        withTpm: tpm.length > 0,
        config,
        disks: tags.flatMap((t, i) => (t.has(s.id) ? [i] : [])),
        tpmState: tpm.map((n) => {
          const entry = snapshotTpmEntry(s.id, n);
          return { file: entry, size: fs.statSync(path.join(p.tpmCopy(s.id), n)).size, sha256: h(entry) };
        }),
      };
    }),
  });
  return { section, files };
}

/**
 * Before the VM appears: every disk (and the variables file) holds the tags the section names,
 * and no snapshot id is taken on this host (ids are the tags, unique per host: the VM it was
 * exported from lives here, so import the bundle on another host or without its snapshots).
 */
export async function checkImportedTree(
  ctx: VmContext,
  repo: SnapshotRepo,
  tree: BundleSnapshots,
  disks: string[],
  vars: string | null,
): Promise<void> {
  const tags = await Promise.all(disks.map((d) => imgSnapshotTags(d, ctx.env).then((t) => new Set(t))));
  const varTags = vars ? new Set(await imgSnapshotTags(vars, ctx.env)) : new Set<string>();
  for (const s of tree.list) {
    const missing = s.disks.find((i) => !tags[i]!.has(s.id));
    if (missing !== undefined) throw new BundleError(`snapshot "${s.name}" (${s.id}): disk ${missing} does not hold its tag`);
    if (s.withVars && !varTags.has(s.id)) throw new BundleError(`snapshot "${s.name}" (${s.id}): the UEFI variables do not hold its tag`);
  }
  const taken = tree.list.find((s) => repo.exists(s.id));
  if (taken)
    throw new CorralError(
      'conflict',
      `snapshot "${taken.name}" (${taken.id}) already exists on this host (the VM it was exported from is here): import the bundle on another host`,
      'file',
    );
}

/** Recreates the rows under the new VM and moves each snapshot's staged TPM copy into place. */
export function registerTree(
  repo: SnapshotRepo,
  vmId: string,
  vmDir: string,
  tree: BundleSnapshots,
  config: (settings: BundleSnapshots['list'][number]['config'], disks: number[]) => VmConfig,
  staged: (entry: string) => string,
): void {
  const p = places(vmDir);
  const rows: SnapshotInfo[] = tree.list.map((s) => ({
    id: s.id,
    vmId,
    parentId: s.parentId,
    name: s.name,
    description: s.description,
    createdAt: s.createdAt,
    hasRam: s.hasRam,
    kind: s.kind,
    consistency: s.consistency,
    pauseMs: s.pauseMs,
    scheduled: s.scheduled,
    withVars: s.withVars,
    withTpm: s.withTpm,
    config: config(s.config, s.disks),
  }));
  for (const s of tree.list) {
    if (!s.tpmState.length) continue;
    const to = p.tpmCopy(s.id);
    ensurePrivateDir(path.dirname(path.dirname(to)));
    ensurePrivateDir(path.dirname(to));
    ensurePrivateDir(to);
    for (const f of s.tpmState) fs.renameSync(staged(f.file), path.join(to, path.basename(f.file)));
  }
  repo.addTree(vmId, rows, tree.currentId);
}
