// Disk images. Corral identifies a format from the header itself and always passes it
// explicitly: QEMU's own probing would let a raw guest disk pretend to be qcow2.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { withPrivateUmask } from '../private-files.js';

const run = promisify(execFile);

export type ImageFormat = 'qcow2' | 'raw';

const FOREIGN: Array<[Buffer, string]> = [
  [Buffer.from('KDMV'), 'vmdk'],
  [Buffer.from('# Disk DescriptorFile'), 'vmdk'],
  [Buffer.from('vhdxfile'), 'vhdx'],
  [Buffer.from('conectix'), 'vpc'],
  [Buffer.from('QED\0'), 'qed'],
  [Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]), 'luks'],
];

export function qemuImgBinary(env: NodeJS.ProcessEnv = process.env): string {
  return env.CORRAL_QEMU_IMG ?? 'qemu-img';
}

/** qcow2 or raw from the first bytes; other formats are refused with what to do. */
export function detectFormat(file: string): ImageFormat {
  const fd = fs.openSync(file, 'r');
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() && !st.isBlockDevice()) throw new Error(`${file} is not a file or block device`);
    const head = Buffer.alloc(512);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    if (n >= 4 && head.readUInt32BE(0) === 0x514649fb) return 'qcow2';
    if (n >= 0x44 && head.subarray(0x40, 0x44).toString() === '<<< ' && head.subarray(0, 64).includes('VirtualBox')) {
      throw new Error(`${file} is a VirtualBox (vdi) image: convert it first (qemu-img convert -f vdi -O qcow2 …)`);
    }
    for (const [magic, name] of FOREIGN) {
      if (n >= magic.length && head.subarray(0, magic.length).equals(magic)) {
        throw new Error(
          `${file} is a ${name} image, which Corral does not open: convert it first (qemu-img convert -f ${name} -O qcow2 …)`,
        );
      }
    }
    return 'raw';
  } finally {
    fs.closeSync(fd);
  }
}

interface ImgInfo {
  format: string;
  'virtual-size': number;
  'backing-filename'?: string;
  'backing-filename-format'?: string;
  'format-specific'?: { data?: { 'data-file'?: string } };
}

/**
 * Checks an existing image opens as `format` and has no backing or external data file (those
 * could expose host files). `base`: the managed base a linked clone's overlay must name, the
 * one backing file Corral accepts (it made the chain itself).
 */
export async function checkImage(file: string, format: ImageFormat, env = process.env, base?: string): Promise<{ virtualSize: number }> {
  let info: ImgInfo;
  try {
    const { stdout } = await run(qemuImgBinary(env), ['info', '-f', format, '--output=json', '--', file], { timeout: 30_000 });
    info = JSON.parse(stdout) as ImgInfo;
  } catch (err) {
    const msg = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
    throw new Error(`${file} is not a valid ${format} image: ${msg.split('\n')[0]}`);
  }
  const backing = info['backing-filename'];
  if (base && backing !== base) throw new Error(`${file} should stand on the managed base ${base} but names ${backing ?? 'none'}`);
  if (base && info['backing-filename-format'] !== 'qcow2') throw new Error(`${file}: its base must be qcow2`);
  if (backing && !base) throw new Error(`${file} has a backing file (${info['backing-filename']}); Corral only opens standalone images`);
  if (info['format-specific']?.data?.['data-file'])
    throw new Error(`${file} uses an external data file; Corral only opens standalone images`);
  return { virtualSize: info['virtual-size'] };
}

export async function createQcow2(file: string, sizeBytes: number, env = process.env): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  try {
    // 0600: a guest's disk is as private as its memory
    await withPrivateUmask(() =>
      run(qemuImgBinary(env), ['create', '-q', '-f', 'qcow2', '--', file, String(sizeBytes)], { timeout: 60_000 }),
    );
  } catch (err) {
    const msg = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
    throw new Error(`could not create disk ${file}: ${msg}`);
  }
}

/** Whether a qcow2 holds internal snapshots (then it cannot simply become a shared base). */
export async function hasInternalSnapshots(file: string, env = process.env): Promise<boolean> {
  const { stdout } = await run(qemuImgBinary(env), ['info', '-U', '-f', 'qcow2', '--output=json', '--', file], { timeout: 30_000 });
  return ((JSON.parse(stdout) as { snapshots?: unknown[] }).snapshots?.length ?? 0) > 0;
}

/** Virtual size of an image, also while QEMU has it open (-U: no lock taken). */
export async function imageVirtualSize(file: string, format: ImageFormat, env = process.env): Promise<number> {
  const { stdout } = await run(qemuImgBinary(env), ['info', '-U', '-f', format, '--output=json', '--', file], { timeout: 30_000 });
  return (JSON.parse(stdout) as ImgInfo)['virtual-size'];
}

export async function resizeImage(file: string, format: ImageFormat, sizeBytes: number, env = process.env): Promise<void> {
  try {
    await run(qemuImgBinary(env), ['resize', '-q', '-f', format, '--', file, String(sizeBytes)], { timeout: 60_000 });
  } catch (err) {
    const msg = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
    throw new Error(`could not grow ${file}: ${msg}`);
  }
}

/** Virtual size from the image itself, cheaply: the qcow2 header's size field, or a raw file's length. */
export function imageSizeFast(file: string, format: ImageFormat): number | null {
  try {
    if (format === 'raw') {
      const st = fs.statSync(file);
      return st.isFile() ? st.size : null;
    }
    const fd = fs.openSync(file, 'r');
    try {
      const head = Buffer.alloc(32);
      fs.readSync(fd, head, 0, 32, 0);
      return head.readUInt32BE(0) === 0x514649fb ? Number(head.readBigUInt64BE(24)) : null;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
}
