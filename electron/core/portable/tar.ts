// A small ustar writer and a strict streaming reader for bundles and OVAs. Only plain files
// with plain relative names pass the reader: links, devices, directories, `..`, absolute
// names and extension headers are refused, so nothing in an archive can point outside it.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

export const BLOCK = 512;
/** The unit of streamed copies: large enough that per-call costs vanish against the bytes. */
export const CHUNK = 4 << 20;
/** The largest size plain octal holds (8 GiB − 1); larger ones use base-256 (GNU, star). */
const OCTAL_MAX = 0o77777777777;

/** A bad archive: the message says what is wrong, naming the entry. */
export class BundleError extends Error {}

const abortError = () => Object.assign(new Error('cancelled'), { name: 'AbortError' });

// ---- writing --------------------------------------------------------------------------

export function header(name: string, size: number, mtime = 0): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write('0000600\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  if (size <= OCTAL_MAX) h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  else {
    h[124] = 0x80;
    h.writeBigUInt64BE(BigInt(size), 128);
  }
  h.write(
    Math.floor(mtime / 1000)
      .toString(8)
      .padStart(11, '0') + '\0',
    136,
  );
  h[156] = 0x30; // '0': a regular file
  h.write('ustar\0', 257);
  h.write('00', 263);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

export const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

/** Writes a tar to a file handle, sequentially; `at` is where the next byte goes. */
export class TarWriter {
  at = 0;
  constructor(private readonly fh: FileHandle) {}

  async write(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, off, buf.length - off, this.at);
      off += bytesWritten;
      this.at += bytesWritten;
    }
  }

  /** A whole entry from memory; returns the offset of its data (to rewrite it in place later). */
  async entry(name: string, data: Buffer): Promise<number> {
    await this.write(header(name, data.length, Date.now()));
    const at = this.at;
    await this.write(Buffer.concat([data, Buffer.alloc(padding(data.length))]));
    return at;
  }

  /**
   * An entry streamed from a file, hashed as it goes; `onBytes` reports progress. Two large
   * buffers in turn: while one chunk is written and the next read (the thread pool), the main
   * thread hashes the chunk, so hashing overlaps the I/O instead of adding to it.
   */
  async file(name: string, src: string, size: number, onBytes: (n: number) => void, signal?: AbortSignal): Promise<string> {
    await this.write(header(name, size, Date.now()));
    const hash = createHash('sha256');
    const fh = await fs.promises.open(src, 'r');
    try {
      const bufs = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
      let turn = 0;
      let n = 0;
      let reading = fh.read(bufs[0]!, 0, CHUNK, 0);
      let writing: Promise<void> = Promise.resolve();
      for (;;) {
        const { bytesRead } = await reading;
        if (bytesRead === 0) break;
        const chunk = bufs[turn]!.subarray(0, bytesRead);
        n += bytesRead;
        if (n > size) break;
        // the other buffer is free once its write is done: read the next chunk into it
        await writing;
        if (signal?.aborted) throw abortError();
        turn ^= 1;
        reading = fh.read(bufs[turn]!, 0, CHUNK, n);
        writing = this.write(chunk);
        writing.catch(() => undefined); // awaited below; never an unhandled rejection meanwhile
        hash.update(chunk);
        onBytes(bytesRead);
      }
      await writing;
      if (n !== size) throw new Error(`${src} changed size while it was written (${n} of ${size} bytes)`);
    } finally {
      await fh.close();
    }
    await this.write(Buffer.alloc(padding(size)));
    return hash.digest('hex');
  }

  /** The end of the archive: two zero blocks. */
  end(): Promise<void> {
    return this.write(Buffer.alloc(2 * BLOCK));
  }
}

// ---- reading ----------------------------------------------------------------------------

export interface TarEntry {
  name: string;
  size: number;
}

const TYPES: Record<string, string> = {
  '1': 'a hard link',
  '2': 'a symbolic link',
  '3': 'a character device',
  '4': 'a block device',
  '5': 'a directory',
  '6': 'a FIFO',
  '7': 'a contiguous file',
  x: 'a pax extended header',
  g: 'a pax global header',
  L: 'a GNU long name',
  K: 'a GNU long link name',
};

/** Plain relative names only: no absolute path, no `..`, nothing but letters, digits and ._-/ */
export function checkEntryName(name: string): string {
  if (name.startsWith('/')) throw new BundleError(`the archive entry "${name}" has an absolute path`);
  const parts = name.replace(/^\.\//, '').split('/');
  if (parts.includes('..')) throw new BundleError(`the archive entry "${name}" points outside the archive ("..")`);
  if (parts.some((p) => p === '' || p === '.') || !/^[A-Za-z0-9._/-]+$/.test(name) || name.length > 255)
    throw new BundleError(`the archive entry "${name}" has a name Corral does not accept (letters, digits, ".", "_", "-" and "/" only)`);
  return parts.join('/');
}

function octal(h: Buffer, off: number, len: number, what: string): number {
  if (h[off]! & 0x80) {
    // base-256: big-endian in the remaining bytes
    let v = 0n;
    for (let i = off + 1; i < off + len; i++) v = (v << 8n) | BigInt(h[i]!);
    if (h[off] !== 0x80 || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BundleError(`the archive has an impossible ${what}`);
    return Number(v);
  }
  const text = h
    .subarray(off, off + len)
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]*$/.test(text)) throw new BundleError(`the archive has a corrupt ${what} field`);
  return text ? parseInt(text, 8) : 0;
}

/** Parses one header block; null at the end-of-archive marker. */
export function parseHeader(h: Buffer): TarEntry | null {
  if (h.every((b) => b === 0)) return null;
  const stored = octal(h, 148, 8, 'header checksum');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  if (sum !== stored) throw new BundleError('not a tar archive, or a corrupt header (checksum mismatch)');
  const cstr = (off: number, len: number) => {
    const b = h.subarray(off, off + len);
    const z = b.indexOf(0);
    return b.subarray(0, z < 0 ? len : z).toString('utf8');
  };
  const prefix = h.subarray(257, 262).toString('latin1') === 'ustar' ? cstr(345, 155) : '';
  const raw = prefix ? `${prefix}/${cstr(0, 100)}` : cstr(0, 100);
  const type = String.fromCharCode(h[156]!);
  if (type !== '0' && type !== '\0')
    throw new BundleError(`the archive entry "${raw}" is ${TYPES[type] ?? `of type "${type}"`}; only plain files are accepted`);
  return { name: checkEntryName(raw), size: octal(h, 124, 12, 'size') };
}

/**
 * A file's bytes in CHUNK-sized pieces, read ahead into three buffers in turn. Reusing the
 * buffers matters: a fresh 4 MiB buffer per piece (what a read stream does) costs page faults
 * that made an import several times slower than the copy itself. A piece stays valid until
 * the consumer asks for the next-but-one, which is what TarReader needs (see `data`).
 */
export async function* fileChunks(file: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  const bufs = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
  let turn = 0;
  let at = 0;
  let reading = fh.read(bufs[0]!, 0, CHUNK, 0);
  try {
    for (;;) {
      const { bytesRead } = await reading;
      if (bytesRead === 0) return;
      if (signal?.aborted) throw abortError();
      const piece = bufs[turn]!.subarray(0, bytesRead);
      at += bytesRead;
      turn = (turn + 1) % bufs.length;
      reading = fh.read(bufs[turn]!, 0, CHUNK, at);
      yield piece;
    }
  } finally {
    await reading.catch(() => undefined);
    await fh.close();
  }
}

/**
 * Reads a stream in exact-size pieces; `data` hands an entry's bytes on in chunks. A chunk may
 * share memory with the source's buffers: it is valid only until `onChunk`'s promise resolves.
 * (The reader itself keeps a partial piece only until its next read, copying it then.)
 */
export class TarReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  private done = false;
  /** Bytes consumed so far (progress). */
  offset = 0;

  constructor(stream: AsyncIterable<Buffer>) {
    this.it = stream[Symbol.asyncIterator]();
  }

  private async fill(n: number): Promise<boolean> {
    while (this.buf.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else this.buf = this.buf.length ? Buffer.concat([this.buf, r.value]) : r.value;
    }
    return this.buf.length >= n;
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.offset += n;
    return out;
  }

  /** The next entry's header, or null at the end of the archive. */
  async next(): Promise<TarEntry | null> {
    if (!(await this.fill(BLOCK))) {
      if (this.buf.length === 0 && this.offset > 0) throw new BundleError('the archive is truncated (no end marker)');
      throw new BundleError(this.offset === 0 ? 'the file is empty or not a tar archive' : 'the archive is truncated (a partial header)');
    }
    return parseHeader(this.take(BLOCK));
  }

  /** An entry's data, chunk by chunk, then its padding; a short archive is an error naming the entry. */
  async data(e: TarEntry, onChunk: (chunk: Buffer) => Promise<void> | void): Promise<void> {
    let left = e.size;
    while (left > 0) {
      if (!this.buf.length && !(await this.fill(1)))
        throw new BundleError(`the archive is truncated: "${e.name}" has ${e.size - left} of its ${e.size} bytes`);
      const chunk = this.take(Math.min(left, this.buf.length));
      left -= chunk.length;
      await onChunk(chunk);
    }
    const pad = padding(e.size);
    if (pad && !(await this.fill(pad))) throw new BundleError(`the archive is truncated after "${e.name}"`);
    if (pad) this.take(pad);
  }

  /** A small entry read whole (a manifest), refused above `max` bytes. */
  async small(e: TarEntry, max: number): Promise<Buffer> {
    if (e.size > max) throw new BundleError(`"${e.name}" is ${e.size} bytes; at most ${max} are accepted`);
    const parts: Buffer[] = [];
    await this.data(e, (c) => void parts.push(Buffer.from(c)));
    return Buffer.concat(parts);
  }

  close(): void {
    void this.it.return?.();
  }
}
