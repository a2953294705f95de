// `vm export`: one tar with manifest.json first, then the flattened disks, the UEFI variables
// and the TPM state. The disks are flattened to a scratch folder (qemu-img cannot write qcow2
// to a pipe), then streamed into the tar and hashed on the way; the manifest is written first
// with placeholder hashes of the same length and rewritten in place at the end, so the disks
// are read once. With `snapshots`, the disks and the variables go as the standalone qcow2 files
// they are, internal snapshots included, straight from where they live (no scratch copy), with
// the tree in the manifest and each snapshot's TPM copy (bundle-snapshots.ts).
import fs from 'node:fs';
import path from 'node:path';
import type { Args } from '../api/contract.js';
import { EFI_VARS_FILE, TPM_STATE_DIR } from '../paths.js';
import { CorralError } from '../api/dispatcher.js';
import { convertToQcow2 } from '../qemu/img-copy.js';
import { checkImage, imageVirtualSize } from '../qemu/img.js';
import type { SnapshotRepo } from '../store/snapshot-repo.js';
import type { VmConfig } from '../api/contract.js';
import { recordOf, type VmContext } from '../vms/context.js';
import { exportTree, type TreeExport } from './bundle-snapshots.js';
import { refuseRunning } from './clone.js';
import type { Job } from './jobs.js';
import { BUNDLE_FORMAT, BUNDLE_VERSION, FLAT_BUNDLE_VERSION, MANIFEST, type Manifest } from './manifest.js';
import { newPoolFile, stagingDir } from './pool-target.js';
import { TarWriter } from './tar.js';

const PLACEHOLDER = '0'.repeat(64);

export async function exportVm(
  ctx: VmContext,
  repo: SnapshotRepo,
  a: Omit<Args<'vm.export'>, 'job'>,
  job: Job,
): Promise<{ file: string; size: number }> {
  const rec = recordOf(ctx, a.vm);
  const target = newPoolFile(ctx.pools, a.file);
  return ctx.locks.run(rec.id, async () => {
    const cur = recordOf(ctx, rec.id);
    refuseRunning(ctx, cur, 'export it');
    // a VM without snapshots exports flattened either way (version 1: every Corral reads it)
    const withTree = Boolean(a.snapshots) && repo.list(cur.id).length > 0;
    if (withTree) await refuseChains(ctx, cur.name, cur.config);
    const scratch = stagingDir(ctx.pools, 'export');
    try {
      // 1. flatten every disk (chains, linked bases and internal snapshots left behind), or
      // with the tree, take the qcow2 files as they are (a raw disk holds no snapshot: flattened)
      const asIs = (d: VmConfig['disks'][number]) => withTree && d.format === 'qcow2';
      const sizes = cur.config.disks.map((d) => (asIs(d) ? 0 : fs.statSync(d.path).size));
      job.begin('flattening disks', sizes.reduce((x, y) => x + y, 0) || 1);
      const flat: Array<{ src: string; entry: string; virtualSize: number; size: number }> = [];
      let before = 0;
      for (const [i, d] of cur.config.disks.entries()) {
        let out = d.path;
        if (!asIs(d)) {
          out = path.join(scratch, `disk${i}.qcow2`);
          await convertToQcow2(d, out, { signal: job.signal, onProgress: (f) => job.set(before + f * sizes[i]!) }, ctx.env);
          before += sizes[i]!;
        }
        flat.push({
          src: out,
          entry: `disk${i}.qcow2`,
          virtualSize: await imageVirtualSize(out, 'qcow2', ctx.env),
          size: fs.statSync(out).size,
        });
      }
      const varsSrc = path.join(ctx.vmDir(cur.id), EFI_VARS_FILE);
      let vars: { src: string; entry: string; size: number } | null = null;
      if (fs.existsSync(varsSrc)) {
        let out = varsSrc;
        if (!withTree) {
          out = path.join(scratch, EFI_VARS_FILE);
          await convertToQcow2({ path: varsSrc, format: 'qcow2' }, out, { signal: job.signal }, ctx.env);
        }
        vars = { src: out, entry: EFI_VARS_FILE, size: fs.statSync(out).size };
      }
      const tree: TreeExport | null = withTree
        ? await exportTree(
            ctx,
            repo,
            cur.id,
            flat.map((f) => f.src),
            vars?.src ?? null,
          )
        : null;
      const tpmDir = path.join(ctx.vmDir(cur.id), TPM_STATE_DIR);
      const tpm = (fs.existsSync(tpmDir) ? fs.readdirSync(tpmDir, { withFileTypes: true }) : [])
        .filter((e) => e.isFile() && /^[A-Za-z0-9._-]+$/.test(e.name) && !e.name.startsWith('.'))
        .map((e) => ({
          src: path.join(tpmDir, e.name),
          entry: `${TPM_STATE_DIR}/${e.name}`,
          size: fs.statSync(path.join(tpmDir, e.name)).size,
        }));

      // 2. the archive: manifest (placeholder hashes), then every file, hashed as it streams
      const hashes = new Map<string, string>();
      const exportedAt = ctx.clock.now();
      const manifest = (h: (entry: string) => string): Manifest => {
        const { disks: _d, shares: _s, ...config } = cur.config;
        return {
          format: BUNDLE_FORMAT,
          version: tree ? BUNDLE_VERSION : FLAT_BUNDLE_VERSION,
          name: cur.name,
          exportedAt,
          config,
          machineType: cur.config.machineType,
          cpuModel: cur.config.cpuModel,
          firmware: cur.config.firmware,
          tpm: cur.config.tpm,
          disks: flat.map((f) => ({ file: f.entry, virtualSize: f.virtualSize, size: f.size, sha256: h(f.entry) })),
          efiVars: vars && { file: vars.entry, size: vars.size, sha256: h(vars.entry) },
          tpmState: tpm.map((f) => ({ file: f.entry, size: f.size, sha256: h(f.entry) })),
          ...(tree ? { snapshots: tree.section(h) } : {}),
        };
      };
      const draft = manifest(() => PLACEHOLDER);
      const files = [...flat, ...(vars ? [vars] : []), ...tpm, ...(tree?.files ?? [])];
      job.begin('writing the bundle', files.reduce((x, f) => x + f.size, 0) || 1);
      const fh = await fs.promises.open(target.temp, 'wx', 0o600);
      try {
        const tar = new TarWriter(fh);
        const text = JSON.stringify(draft, null, 2);
        const at = await tar.entry(MANIFEST, Buffer.from(text));
        for (const f of files) {
          job.check();
          hashes.set(f.entry, await tar.file(f.entry, f.src, f.size, (n) => job.add(n), job.signal));
        }
        await tar.end();
        const final = JSON.stringify(
          manifest((e) => hashes.get(e)!),
          null,
          2,
        );
        if (Buffer.byteLength(final) !== Buffer.byteLength(text)) throw new Error('the manifest changed length');
        await fh.write(Buffer.from(final), 0, Buffer.byteLength(final), at);
        await fh.sync();
      } finally {
        await fh.close();
      }
      job.check();
      fs.renameSync(target.temp, target.file);
      job.finish();
      const size = fs.statSync(target.file).size;
      const n = withTree ? repo.list(cur.id).length : 0;
      ctx.journal.updated(cur, `Exported "${cur.name}" to ${target.file} (${size} bytes${n ? `, with ${n} snapshot(s)` : ''})`);
      return { file: target.file, size };
    } catch (err) {
      fs.rmSync(target.temp, { force: true });
      throw err;
    } finally {
      // off the event loop: unlinking large flattened disks takes a while
      await fs.promises.rm(scratch, { recursive: true, force: true });
    }
  });
}

/**
 * Snapshots travel inside the qcow2 files, so the files go as they are: a linked clone's
 * overlay would need its base (its snapshots read through to it), and a bundle never carries a
 * backing file. Refused, naming the disk, with the ways out.
 */
async function refuseChains(ctx: VmContext, name: string, config: VmConfig): Promise<void> {
  for (const [i, d] of config.disks.entries()) {
    if (d.format !== 'qcow2') continue;
    const why = d.base
      ? `stands on the managed base ${d.base} (a linked clone)`
      : await checkImage(d.path, 'qcow2', ctx.env).then(
          () => null,
          (err: Error) => err.message,
        );
    if (why) {
      const reason = `disk ${i} ${why}; a bundle with snapshots carries no backing file: export without --snapshots (flattened) or make a full clone first`;
      throw new CorralError('conflict', `cannot export "${name}" with its snapshots: ${reason}`, 'snapshots', { reason });
    }
  }
}
