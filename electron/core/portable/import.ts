// `vm import`: a bundle (or an OVA, see ova.ts) from a pool becomes a VM only once all of it
// is checked. Every entry is streamed into a scratch folder in the default pool, hashed on the
// way and compared with the manifest; the disks are then checked as any image a user brings
// (standalone, no backing file); only then are the files moved into place and the VM
// registered, in one step. Any failure or a cancel removes everything it wrote. A bundle with
// a snapshot tree has its tags checked in the disks first and its rows recreated with the VM.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Args, VmConfig, VmInfo } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { EFI_VARS_FILE, TPM_STATE_DIR } from '../paths.js';
import { ensurePrivateDir } from '../private-files.js';
import { checkImage } from '../qemu/img.js';
import { checkBootFiles } from '../vms/config-checks.js';
import type { SnapshotRepo } from '../store/snapshot-repo.js';
import type { VmContext } from '../vms/context.js';
import { macsTaken, withNewMacs } from '../vms/mac.js';
import { checkImportedTree, registerTree } from './bundle-snapshots.js';
import { newVmId } from './clone.js';
import type { Job } from './jobs.js';
import { listedFiles, MANIFEST, MANIFEST_MAX_BYTES, parseManifest, type Manifest } from './manifest.js';
import { importOva } from './ova.js';
import { stagingDir } from './pool-target.js';
import { BundleError, fileChunks, TarReader } from './tar.js';

export type ImportArgs = Omit<Args<'vm.import'>, 'job'>;

/** A bundle's error as the API gives it: what is wrong, naming the file field. */
export function bundleFailure(file: string, err: unknown): unknown {
  if (err instanceof BundleError) return new CorralError('invalid-argument', `${file}: ${err.message}`, 'file', { reason: err.message });
  return err;
}

export async function importVm(ctx: VmContext, repo: SnapshotRepo, a: ImportArgs, job: Job): Promise<VmInfo> {
  const src = ctx.pools.resolve('file', a.file).path;
  if (a.name !== undefined && ctx.vms.nameTaken(a.name)) throw new CorralError('conflict', `a VM named "${a.name}" already exists`, 'name');
  const scratch = stagingDir(ctx.pools, 'import');
  const archiveSize = fs.statSync(src).size;
  const reader = new TarReader(fileChunks(src, job.signal));
  try {
    job.begin('reading the archive', archiveSize);
    const first = await reader.next();
    if (!first) throw new BundleError('the archive is empty');
    if (first.name.endsWith('.ovf')) return await importOva(ctx, { ...a, src, archiveSize }, reader, first, scratch, job);
    if (first.name !== MANIFEST) throw new BundleError(`the first entry is "${first.name}", not manifest.json: not a Corral bundle or OVA`);
    const m = parseManifest(await reader.small(first, MANIFEST_MAX_BYTES));
    const name = a.name ?? m.name;
    if (ctx.vms.nameTaken(name))
      throw new CorralError('conflict', `a VM named "${name}" already exists: import it with another name (--name)`, 'name');
    checkDeclaredSizes(ctx, listedFiles(m), archiveSize, scratch);
    const staged = await extractListed(reader, m, scratch, job);
    // the disks are images someone brings: standalone only, and the size the manifest says
    for (const [i, d] of m.disks.entries()) {
      const { virtualSize } = await checkImage(staged.get(d.file)!, 'qcow2', ctx.env).catch((err: Error) => {
        throw new BundleError(`disk ${i} (${d.file}): ${err.message.replace(staged.get(d.file)!, d.file)}`);
      });
      if (virtualSize !== d.virtualSize)
        throw new BundleError(`disk ${i} (${d.file}) is ${virtualSize} bytes, the manifest says ${d.virtualSize}`);
    }
    const disks = m.disks.map((d) => staged.get(d.file)!);
    const efiVars = m.efiVars ? staged.get(m.efiVars.file)! : null;
    // the variables file too is a qcow2 Corral will open (and snapshot): standalone only
    if (efiVars)
      await checkImage(efiVars, 'qcow2', ctx.env).catch((err: Error) => {
        throw new BundleError(`the UEFI variables (${m.efiVars!.file}): ${err.message.replace(efiVars, m.efiVars!.file)}`);
      });
    const tree = m.snapshots;
    if (tree) await checkImportedTree(ctx, repo, tree, disks, efiVars);
    job.check();
    const config = importedConfig(ctx, m.config, a.name !== undefined);
    return register(ctx, {
      name,
      config,
      disks,
      efiVars,
      tpm: m.tpmState.map((f) => ({ from: staged.get(f.file)!, name: path.basename(f.file) })),
      note: `Imported "${name}" from ${src}${tree?.list.length ? ` with ${tree.list.length} snapshot(s)` : ''}`,
      // each snapshot's settings as checked here, with the machine's (possibly new) MACs and its disks
      after: tree
        ? (id, placed) =>
            registerTree(
              repo,
              id,
              ctx.vmDir(id),
              tree,
              (settings, held) => ({ ...importedConfig(ctx, settings, false), nics: config.nics, disks: held.map((i) => placed[i]!) }),
              (entry) => staged.get(entry)!,
            )
        : undefined,
    });
  } catch (err) {
    throw bundleFailure(a.file, err);
  } finally {
    reader.close();
    // off the event loop: unlinking large files takes a while
    await fs.promises.rm(scratch, { recursive: true, force: true });
  }
}

/** Sizes a bundle declares must fit in the archive itself and on the default pool's disk. */
export function checkDeclaredSizes(
  ctx: VmContext,
  files: Array<{ file: string; size: number }>,
  archiveSize: number,
  scratch: string,
): void {
  const total = files.reduce((x, f) => x + f.size, 0);
  if (total > archiveSize)
    throw new BundleError(`the manifest declares ${total} bytes of files but the archive has only ${archiveSize}: truncated or forged`);
  const st = fs.statfsSync(scratch);
  const free = st.bavail * st.bsize;
  if (total > free) {
    throw new CorralError('failed', `the bundle needs ${total} bytes; the default pool has ${free} free`, 'file', {
      limit: free,
      current: total,
    });
  }
}

/** Streams every entry the manifest lists into the scratch folder, checking size and SHA-256. */
async function extractListed(reader: TarReader, m: Manifest, scratch: string, job: Job): Promise<Map<string, string>> {
  const want = new Map(listedFiles(m).map((f) => [f.file, f]));
  const staged = new Map<string, string>();
  for (let e = await reader.next(); e; e = await reader.next()) {
    job.check();
    const decl = want.get(e.name);
    if (!decl)
      throw new BundleError(staged.has(e.name) ? `"${e.name}" appears twice in the archive` : `"${e.name}" is not in the manifest`);
    if (e.size !== decl.size) throw new BundleError(`"${e.name}" is ${e.size} bytes in the archive, the manifest says ${decl.size}`);
    want.delete(e.name);
    const out = path.join(scratch, `f${staged.size}`);
    const hash = createHash('sha256');
    const fh = await fs.promises.open(out, 'wx', 0o600);
    try {
      await reader.data(e, async (chunk) => {
        // the write runs in the thread pool while this thread hashes the same bytes
        const written = fh.write(chunk);
        hash.update(chunk);
        await written;
        job.set(reader.offset);
      });
    } finally {
      await fh.close();
    }
    if (hash.digest('hex') !== decl.sha256)
      throw new BundleError(`"${e.name}" does not match its SHA-256 in the manifest (corrupt or altered)`);
    staged.set(e.name, out);
  }
  const missing = [...want.keys()][0];
  if (missing) throw new BundleError(`"${missing}" is in the manifest but missing from the archive`);
  return staged;
}

/**
 * The config on this host. Boot files must be in a pool here (checked, naming the field); an
 * installer ISO that is not is dropped. A copy (a new name) or a MAC in use here gets a new MAC;
 * otherwise the machine keeps its own, as a VM moved between hosts should.
 */
export function importedConfig(ctx: VmContext, c: Omit<VmConfig, 'disks' | 'shares'>, copy: boolean): Omit<VmConfig, 'disks'> {
  let out: Omit<VmConfig, 'disks'> = { ...c, shares: [], autostart: false };
  if (out.iso) {
    try {
      ctx.pools.resolve('iso', out.iso);
    } catch {
      out.iso = null;
    }
  }
  out = checkBootFiles(out, ctx.pools, () => null);
  if (copy || macsTaken(out.nics, ctx.vms)) out.nics = withNewMacs(out.nics, ctx.vms);
  return out;
}

export interface Staged {
  name: string;
  config: Omit<VmConfig, 'disks'>;
  /** Checked qcow2 files in the scratch folder, in disk order. */
  disks: string[];
  efiVars: string | null;
  /** TPM state files and their names in the VM's tpm folder. */
  tpm: Array<{ from: string; name: string }>;
  note: string;
  /** More to put in place once the VM's row exists (a snapshot tree); a failure undoes it all. */
  after?: (vmId: string, disks: VmConfig['disks']) => void;
}

/** Moves checked files into place and registers the VM; undoes the moves if that fails. */
export function register(ctx: VmContext, s: Staged): VmInfo {
  const id = newVmId(ctx);
  const dir = ctx.vmDir(id);
  const moved: Array<[string, string]> = [];
  const move = (from: string, to: string) => {
    fs.renameSync(from, to);
    moved.push([from, to]);
  };
  try {
    ensurePrivateDir(dir);
    const disks: VmConfig['disks'] = s.disks.map((f, i) => {
      const to = ctx.pools.newDiskPath(id, i);
      move(f, to);
      return { path: to, format: 'qcow2', owned: true };
    });
    if (s.efiVars) move(s.efiVars, path.join(dir, EFI_VARS_FILE));
    if (s.tpm.length) ensurePrivateDir(path.join(dir, TPM_STATE_DIR));
    for (const f of s.tpm) move(f.from, path.join(dir, TPM_STATE_DIR, f.name));
    const rec = ctx.vms.insert(id, s.name, { ...s.config, disks }, ctx.clock.now());
    try {
      s.after?.(id, disks);
    } catch (err) {
      ctx.vms.delete(id);
      throw err;
    }
    ctx.journal.created(rec, s.note);
    ctx.journal.changed(rec.id);
    return ctx.describe(rec);
  } catch (err) {
    for (const [, to] of moved) fs.rmSync(to, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
