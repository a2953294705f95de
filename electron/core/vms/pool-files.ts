// What a pool holds: its top-level regular files, each with the kind its first bytes say
// (an ISO 9660 image, a qcow2 or raw disk, a Linux kernel or initrd). Hidden files (uploads
// in progress among them) are left out.
import fs from 'node:fs';
import path from 'node:path';
import type { PoolFile, PoolFileKind } from '../api/contract.js';

const MAX_FILES = 2000;

export function listPoolFiles(dir: string): PoolFile[] {
  const out: PoolFile[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const file = path.join(dir, name);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(file); // symlinks are left out: what is listed, the pool holds itself
      if (!st.isFile()) continue;
      out.push({ name, path: file, size: st.size, format: fileKind(file, name, st.size), mtime: st.mtimeMs });
    } catch {
      continue; // vanished or unreadable
    }
    if (out.length >= MAX_FILES) break;
  }
  return out.sort((a, b) => b.mtime - a.mtime || a.name.localeCompare(b.name));
}

const GZIP = [0x1f, 0x8b];
const XZ = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const ZSTD = [0x28, 0xb5, 0x2f, 0xfd];
const LZ4 = [0x02, 0x21, 0x4c, 0x18];

export function fileKind(file: string, name: string, size: number): PoolFileKind {
  const head = Buffer.alloc(0x8006);
  let n = 0;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      n = fs.readSync(fd, head, 0, head.length, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return 'other';
  }
  const starts = (magic: number[], at = 0) => n >= at + magic.length && magic.every((b, i) => head[at + i] === b);
  if (n >= 4 && head.readUInt32BE(0) === 0x514649fb) return 'qcow2';
  if (n >= 0x8006 && head.subarray(0x8001, 0x8006).toString('latin1') === 'CD001') return 'iso';
  if (n >= 0x206 && head.subarray(0x202, 0x206).toString('latin1') === 'HdrS') return 'kernel';
  if (starts(GZIP) || starts(XZ) || starts(ZSTD) || starts(LZ4) || head.subarray(0, 6).toString('latin1') === '070701') return 'initrd';
  if (/\.(img|raw|bin)$/i.test(name) || (size >= 1024 * 1024 && size % 512 === 0)) return 'raw';
  return 'other';
}
