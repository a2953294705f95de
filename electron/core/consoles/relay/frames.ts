// The serial console between hosts is a line of JSON per frame, owner → caller: output at its
// position in the owner's serial log, or the end with its reason. Nothing goes the other way
// (keystrokes are calls, serial.write, forwarded like any other).
export type SerialFrame = { t: 'data'; data: string; offset: number } | { t: 'closed'; reason: string };

/** Longer lines are not frames: a catch-up is at most 256 KiB, about 342 KiB in base64. */
export const MAX_FRAME = 1024 * 1024;

export function encodeFrame(f: SerialFrame): string {
  return `${JSON.stringify(f)}\n`;
}

/** A frame, or null for anything else (an owner of another version, a corrupted line). */
export function decodeFrame(line: string): SerialFrame | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (!v || typeof v !== 'object') return null;
  const f = v as Record<string, unknown>;
  if (f.t === 'data' && typeof f.data === 'string' && Number.isSafeInteger(f.offset) && (f.offset as number) >= 0)
    return { t: 'data', data: f.data, offset: f.offset as number };
  if (f.t === 'closed' && typeof f.reason === 'string') return { t: 'closed', reason: f.reason.slice(0, 300) };
  return null;
}

/** Splits a byte stream into lines; a line over `max` is an error (the stream is then dropped). */
export class LineSplitter {
  private rest = '';

  constructor(private readonly max = MAX_FRAME) {}

  push(chunk: Buffer | string): string[] {
    const text = this.rest + chunk.toString();
    const lines = text.split('\n');
    this.rest = lines.pop()!;
    if (this.rest.length > this.max) throw new Error(`a console frame over ${this.max} bytes`);
    return lines.filter((l) => l.length > 0);
  }
}
