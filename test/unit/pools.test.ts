// Pool files by their first bytes, and uploads: names, declared sizes, hashes, temp files.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { toApiError } from '../../electron/core/api/dispatcher';
import { fileKind, listPoolFiles } from '../../electron/core/vms/pool-files';
import { checkUploadName, receiveUpload } from '../../electron/core/vms/pool-upload';
import { within } from '../../electron/core/vms/pools';
import { tempDir } from '../helpers';

function write(dir: string, name: string, bytes: Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  return p;
}

describe('pool files', () => {
  it('are told apart by their headers', () => {
    const dir = tempDir();
    const at = (off: number, s: string, size = 0x9000) => {
      const b = Buffer.alloc(size);
      b.write(s, off, 'latin1');
      return b;
    };
    expect(fileKind(write(dir, 'a', at(0x8001, 'CD001')), 'a', 0x9000)).toBe('iso');
    expect(fileKind(write(dir, 'b', Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3])), 'b', 8)).toBe('qcow2');
    expect(fileKind(write(dir, 'c', at(0x202, 'HdrS')), 'c', 0x9000)).toBe('kernel');
    expect(fileKind(write(dir, 'd', Buffer.from([0x1f, 0x8b, 8, 0])), 'd', 4)).toBe('initrd');
    expect(fileKind(write(dir, 'e.img', Buffer.alloc(10)), 'e.img', 10)).toBe('raw');
    expect(fileKind(write(dir, 'notes.txt', Buffer.from('hello')), 'notes.txt', 5)).toBe('other');
  });

  it('lists regular top-level files only: no hidden ones, symlinks or directories', () => {
    const dir = tempDir();
    write(dir, 'disk.img', Buffer.alloc(512));
    write(dir, '.upload-123', Buffer.alloc(512));
    fs.symlinkSync('/etc/shadow', path.join(dir, 'shadow.img'));
    fs.mkdirSync(path.join(dir, 'sub'));
    expect(listPoolFiles(dir).map((f) => f.name)).toEqual(['disk.img']);
  });

  it('lie within a directory only below it, never beside it', () => {
    expect(within('/srv/iso/a.iso', '/srv/iso')).toBe(true);
    expect(within('/srv/iso', '/srv/iso')).toBe(true);
    expect(within('/srv/isos/a.iso', '/srv/iso')).toBe(false);
  });
});

describe('uploads', () => {
  it.each([
    ['', 'must not be empty'],
    ['.hidden.iso', 'must not start with "."'],
    ['a/b.iso', 'must be a file name, without "/"'],
    ['..', 'must not start with "."'],
    ['a\nb', 'must not contain control characters'],
    ['x'.repeat(256), 'must be at most 255 bytes'],
  ])('refuse the name %j', (name, reason) => {
    let err: unknown;
    try {
      checkUploadName(name);
    } catch (e) {
      err = e;
    }
    expect(toApiError(err)).toMatchObject({ field: 'name', reason });
  });

  it('store the file under its name with its SHA-256, leaving no temp file', async () => {
    const dir = tempDir();
    const data = Buffer.from('an installer image, in three chunks');
    const r = await receiveUpload(dir, 'x.iso', data.length, Readable.from([data.subarray(0, 5), data.subarray(5, 20), data.subarray(20)]));
    expect(r).toMatchObject({ name: 'x.iso', size: data.length, sha256: createHash('sha256').update(data).digest('hex') });
    expect(fs.readdirSync(dir)).toEqual(['x.iso']);
    await expect(receiveUpload(dir, 'x.iso', 1, Readable.from([Buffer.from('y')]))).rejects.toMatchObject({ code: 'conflict' });
  });

  it('refuse bodies longer or shorter than declared, and keep nothing of them', async () => {
    const dir = tempDir();
    await expect(receiveUpload(dir, 'long.iso', 3, Readable.from([Buffer.from('four')]))).rejects.toThrow(/longer than the 3 bytes/);
    await expect(receiveUpload(dir, 'short.iso', 10, Readable.from([Buffer.from('four')]))).rejects.toThrow(/after 4 of 10 bytes/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('refuse a size the pool has no room for, before reading anything', async () => {
    const dir = tempDir();
    const body = Readable.from([Buffer.from('x')]);
    await expect(receiveUpload(dir, 'huge.iso', 2 ** 52, body)).rejects.toMatchObject({ field: 'size' });
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
