// `vm export`: one tar with manifest.json first, then the flattened disks, the UEFI variables
// and the TPM state. The disks are flattened to a scratch folder (qemu-img cannot write qcow2
// to a pipe), then streamed into the tar and hashed on the way; the manifest is written first
// with placeholder hashes of the same length and rewritten in place at the end, so the disks
// are read once.
import fs from 'node:fs';
import path from 'node:path';
import type { Args } from '../api/contract.js';
import { EFI_VARS_FILE, TPM_STATE_DIR } from '../paths.js';
import { convertToQcow2 } from '../qemu/img-copy.js';
import { imageVirtualSize } from '../qemu/img.js';
import { recordOf, type VmContext } from '../vms/context.js';
import { refuseRunning } from './clone.js';
import type { Job } from './jobs.js';
import { BUNDLE_FORMAT, BUNDLE_VERSION, MANIFEST, type Manifest } from './manifest.js';
import { newPoolFile, stagingDir } from './pool-target.js';
import { TarWriter } from './tar.js';

const PLACEHOLDER = '0'.repeat(64);

export async function exportVm(ctx: VmContext, a: Omit<Args<'vm.export'>, 'job'>, job: Job): Promise<{ file: string; size: number }> {
  const rec = recordOf(ctx, a.vm);
  const target = newPoolFile(ctx.pools, a.file);
  return ctx.locks.run(rec.id, async () => {
    const cur = recordOf(ctx, rec.id);
    refuseRunning(ctx, cur, 'export it');
    const scratch = stagingDir(ctx.pools, 'export');
    try {
      // 1. flatten every disk (chains, linked bases and internal snapshots left behind)
      const sizes = cur.config.disks.map((d) => fs.statSync(d.path).size);
      job.begin('flattening disks', sizes.reduce((x, y) => x + y, 0) || 1);
      const flat: Array<{ src: string; entry: string; virtualSize: number; size: number }> = [];
      let before = 0;
      for (const [i, d] of cur.config.disks.entries()) {
        const out = path.join(scratch, `disk${i}.qcow2`);
        await convertToQcow2(d, out, { signal: job.signal, onProgress: (f) => job.set(before + f * sizes[i]!) }, ctx.env);
        before += sizes[i]!;
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
        const out = path.join(scratch, EFI_VARS_FILE);
        await convertToQcow2({ path: varsSrc, format: 'qcow2' }, out, { signal: job.signal }, ctx.env);
        vars = { src: out, entry: EFI_VARS_FILE, size: fs.statSync(out).size };
      }
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
          version: BUNDLE_VERSION,
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
        };
      };
      const draft = manifest(() => PLACEHOLDER);
      const files = [...flat, ...(vars ? [vars] : []), ...tpm];
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
      ctx.journal.updated(cur, `Exported "${cur.name}" to ${target.file} (${size} bytes)`);
      return { file: target.file, size };
    } catch (err) {
      fs.rmSync(target.temp, { force: true });
      throw err;
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });
}
