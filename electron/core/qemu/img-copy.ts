// Copies of disk images for clones and bundles: a flattened qcow2 (`qemu-img convert`), or an
// overlay on a managed base. Sources are opened as explicit JSON nodes, so nothing follows a
// backing file but the one chain Corral names itself.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { withPrivateUmask } from '../private-files.js';
import { qemuImgBinary, type ImageFormat } from './img.js';

const run = promisify(execFile);

export interface ImageSource {
  path: string;
  format: ImageFormat;
  /** A managed base under a qcow2 overlay: the one backing file opened. */
  base?: string;
}

/** The JSON node QEMU opens for a source: its base named explicitly, or no backing at all. */
export function sourceNode(src: ImageSource): string {
  const file = (filename: string) => ({ driver: 'file', filename });
  if (src.format === 'raw') return `json:${JSON.stringify({ driver: 'raw', file: file(src.path) })}`;
  const backing = src.base ? { driver: 'qcow2', file: file(src.base), backing: null } : null;
  return `json:${JSON.stringify({ driver: 'qcow2', file: file(src.path), backing })}`;
}

export interface ConvertOptions {
  /** An internal snapshot to copy instead of the current state (`-l snapshot.name=TAG`). */
  snapshot?: string;
  /** Write only what differs from this qcow2 base, as an overlay on it (`-B BASE -F qcow2`). */
  onto?: string;
  signal?: AbortSignal;
  /** Fraction done, 0..1, as qemu-img reports it. */
  onProgress?: (fraction: number) => void;
}

/** A standalone qcow2 copy of `src` at `dst` (chains flattened, 0600); nothing left at `dst` on failure. */
export async function convertToQcow2(src: ImageSource, dst: string, o: ConvertOptions = {}, env = process.env): Promise<void> {
  const args = ['convert', '-p', '-O', 'qcow2'];
  if (o.snapshot) args.push('-l', `snapshot.name=${o.snapshot}`);
  if (o.onto) args.push('-B', o.onto, '-F', 'qcow2');
  args.push('--', sourceNode(src), dst);
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  try {
    await withPrivateUmask(() => qemuImg(args, env, o));
  } catch (err) {
    fs.rmSync(dst, { force: true });
    throw err;
  }
}

/** Converts any image qemu-img reads in `format` (an OVA's VMDK) to a standalone qcow2. */
export async function importToQcow2(file: string, format: 'vmdk', dst: string, o: ConvertOptions = {}, env = process.env): Promise<void> {
  const node = `json:${JSON.stringify({ driver: format, file: { driver: 'file', filename: file } })}`;
  try {
    await withPrivateUmask(() => qemuImg(['convert', '-p', '-O', 'qcow2', '--', node, dst], env, o));
  } catch (err) {
    fs.rmSync(dst, { force: true });
    throw err;
  }
}

/** An empty qcow2 overlay on a managed base (the disk of a linked clone). */
export async function createOverlay(base: string, dst: string, env = process.env): Promise<void> {
  try {
    await withPrivateUmask(() =>
      run(qemuImgBinary(env), ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', '--', dst], { timeout: 60_000 }),
    );
  } catch (err) {
    fs.rmSync(dst, { force: true });
    const msg = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
    throw new Error(`could not create the overlay ${dst}: ${msg}`);
  }
}

/** Runs qemu-img with `-p` progress parsed from its output; a signal kills it. */
function qemuImg(args: string[], env: NodeJS.ProcessEnv, o: ConvertOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) return reject(abortError());
    const child = spawn(qemuImgBinary(env), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const onAbort = () => child.kill('SIGKILL');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      const all = [...text.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)];
      const last = all[all.length - 1];
      if (last) o.onProgress?.(Number(last[1]) / 100);
    });
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.on('error', reject);
    child.on('close', (code) => {
      o.signal?.removeEventListener('abort', onAbort);
      if (o.signal?.aborted) reject(abortError());
      else if (code === 0) resolve();
      else reject(new Error(`qemu-img convert failed: ${stderr.trim().split('\n')[0] || `exit ${code}`}`));
    });
  });
}

export function abortError(): Error {
  return Object.assign(new Error('cancelled'), { name: 'AbortError' });
}
