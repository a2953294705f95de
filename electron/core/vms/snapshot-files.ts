// The files a snapshot lives in: which images hold its tag (the qcow2 disks and the UEFI
// variables), the TPM state copied beside them, and the offline operations with qemu-img.
import fs from 'node:fs';
import path from 'node:path';
import type { VmConfig } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { EFI_VARS_FILE, SNAPSHOTS_DIR, TPM_STATE_DIR } from '../paths.js';
import { diskNode, FW_VARS_NODE } from '../qemu/ids.js';
import { ensurePrivateDir } from '../private-files.js';
import { imgSnapshot, imgSnapshotTags } from '../qemu/img-snapshots.js';

export interface VmPlaces {
  dir: string;
  vars: string;
  tpm: string;
  /** Where snapshot `id` keeps its copy of the TPM state. */
  tpmCopy: (id: string) => string;
}

export function places(vmDir: string): VmPlaces {
  return {
    dir: vmDir,
    vars: path.join(vmDir, EFI_VARS_FILE),
    tpm: path.join(vmDir, TPM_STATE_DIR),
    tpmCopy: (id) => path.join(vmDir, SNAPSHOTS_DIR, id, TPM_STATE_DIR),
  };
}

/** Internal snapshots live in qcow2 images: a raw disk (or none) cannot hold one. */
export function checkSnapshotable(name: string, config: VmConfig): void {
  if (!config.disks.length) throw new CorralError('conflict', `"${name}" has no disk to keep a snapshot in`, 'disks');
  const raw = config.disks.findIndex((d) => d.format !== 'qcow2');
  if (raw >= 0) {
    const reason = `disk ${raw} (${config.disks[raw]!.path}) is raw, and only qcow2 images hold snapshots; convert it with qemu-img convert -O qcow2`;
    throw new CorralError('conflict', `cannot snapshot "${name}": ${reason}`, `disks.${raw}`, { reason });
  }
}

/** The VM has UEFI variables to keep (a VM that never booted under UEFI has none yet). */
export function hasVars(config: VmConfig, p: VmPlaces): boolean {
  return config.firmware !== 'bios' && fs.existsSync(p.vars);
}

export function hasTpmState(config: VmConfig, p: VmPlaces): boolean {
  return config.tpm && fs.existsSync(p.tpm);
}

/** Copies the TPM state aside for snapshot `id` (swtpm must not be writing: guest paused or VM stopped). */
export function saveTpm(p: VmPlaces, id: string): void {
  const to = p.tpmCopy(id);
  ensurePrivateDir(path.dirname(path.dirname(to)));
  ensurePrivateDir(path.dirname(to));
  fs.cpSync(p.tpm, to, { recursive: true, preserveTimestamps: true });
}

/** Puts snapshot `id`'s TPM state back (swtpm not running). */
export function restoreTpm(p: VmPlaces, id: string): void {
  const from = p.tpmCopy(id);
  if (!fs.existsSync(from)) throw new Error(`the TPM state of this snapshot is missing (${from})`);
  const tmp = `${p.tpm}.restore`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.cpSync(from, tmp, { recursive: true, preserveTimestamps: true });
  fs.rmSync(p.tpm, { recursive: true, force: true });
  fs.renameSync(tmp, p.tpm);
}

export function dropTpmCopy(p: VmPlaces, id: string): void {
  fs.rmSync(path.dirname(p.tpmCopy(id)), { recursive: true, force: true });
}

/** Tags `tag` in every image offline; undoes the ones done if one fails. */
export async function createOffline(files: string[], tag: string, env: NodeJS.ProcessEnv): Promise<void> {
  const done: string[] = [];
  try {
    for (const f of files) {
      await imgSnapshot('create', f, tag, env);
      done.push(f);
    }
  } catch (err) {
    for (const f of done) await imgSnapshot('delete', f, tag, env).catch(() => undefined);
    throw err;
  }
}

/** The images among `files` that hold `tag`. */
export async function holding(files: string[], tag: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  // read-only looks, one qemu-img each: asked together
  const held = await Promise.all(files.map(async (f) => fs.existsSync(f) && (await imgSnapshotTags(f, env)).includes(tag)));
  return files.filter((_f, i) => held[i]);
}

/** The block nodes that hold a snapshot: every disk, and the UEFI variables when kept. */
export function nodes(config: VmConfig, withVars: boolean): string[] {
  return [...config.disks.map((_d, i) => diskNode(i)), ...(withVars ? [FW_VARS_NODE] : [])];
}

export function imageFiles(config: VmConfig, p: VmPlaces, withVars: boolean): string[] {
  return [...config.disks.map((d) => d.path), ...(withVars ? [p.vars] : [])];
}
