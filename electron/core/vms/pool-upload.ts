// An upload into a pool: streamed to a hidden temp file beside its final name (so a half
// upload is never listed or usable), hashed on the way, then renamed into place. The size is
// declared first and must fit the pool's free space; the name is one plain file name.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { UploadedFile } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { fileKind } from './pool-files.js';
import { UPLOAD_PREFIX } from './pools.js';

/** Left free on the pool's file system whatever is uploaded: guests' disks grow there too. */
export const UPLOAD_RESERVE_BYTES = 256 * 1024 * 1024;

export type UploadResult = UploadedFile;

/** A plain file name: no path, no leading dot (hidden files are uploads in progress), no control codes. */
export function checkUploadName(name: string): void {
  const fail = (reason: string) => new CorralError('invalid-argument', `invalid argument "name": ${reason}`, 'name', { reason });
  if (!name) throw fail('must not be empty');
  if (Buffer.byteLength(name) > 255) throw fail('must be at most 255 bytes');
  if (name.includes('/') || name.includes('\\')) throw fail('must be a file name, without "/"');
  if (name.startsWith('.')) throw fail('must not start with "."');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) throw fail('must not contain control characters');
}

export async function receiveUpload(dir: string, name: string, size: number, body: Readable): Promise<UploadResult> {
  checkUploadName(name);
  if (!Number.isSafeInteger(size) || size < 0)
    throw new CorralError('invalid-argument', 'invalid argument "size": the upload must declare its length', 'size', {
      reason: 'the upload must declare its length',
    });
  const final = path.join(dir, name);
  if (fs.existsSync(final)) throw new CorralError('conflict', `${name} already exists in this pool`, 'name', { reason: 'already exists' });
  const st = fs.statfsSync(dir);
  const room = st.bavail * st.bsize - UPLOAD_RESERVE_BYTES;
  if (size > room) {
    const reason = `${size} bytes do not fit: the pool has room for ${Math.max(0, room)} (keeping ${UPLOAD_RESERVE_BYTES} free)`;
    throw new CorralError('invalid-argument', `invalid argument "size": ${reason}`, 'size', { reason, limit: Math.max(0, room) });
  }
  const temp = path.join(dir, `${UPLOAD_PREFIX}${randomBytes(6).toString('hex')}`);
  const hash = createHash('sha256');
  let seen = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > size) return done(new CorralError('invalid-argument', `the upload is longer than the ${size} bytes it declared`, 'size'));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(body, count, fs.createWriteStream(temp, { flags: 'wx', mode: 0o640 }));
    if (seen !== size) throw new CorralError('invalid-argument', `the upload ended after ${seen} of ${size} bytes`, 'size');
    const fd = fs.openSync(temp, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // never over a file that appeared meanwhile: link fails if the name is taken
    try {
      fs.linkSync(temp, final);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST')
        throw new CorralError('conflict', `${name} already exists in this pool`, 'name', { reason: 'already exists' });
      throw err;
    }
  } finally {
    fs.rmSync(temp, { force: true });
  }
  const done = fs.statSync(final);
  return { name, path: final, size: done.size, format: fileKind(final, name, done.size), mtime: done.mtimeMs, sha256: hash.digest('hex') };
}
