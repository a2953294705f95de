// What a console showed of a numbered flood (tapFlood with `numbered`), checked byte for byte:
// every byte handed to the terminal is the flood's byte at its place, in order; output is
// missing only where a skip note stands; and the flood's end line arrives.

/** The flood's lines: 80 bytes each, starting with their number (as test/fixtures/serial-tap.mjs sends them). */
export const FLOOD_LINE = 80;
const FILL = '0123456789abcdefghij'.repeat(4).slice(0, 67);

/** `n` bytes of the numbered flood from position `from`. */
export function floodText(from: number, n: number): string {
  if (n <= 0) return '';
  const first = Math.floor(from / FLOOD_LINE);
  const last = Math.floor((from + n - 1) / FLOOD_LINE);
  const lines: string[] = [];
  for (let i = first; i <= last; i++) lines.push(`${String(i).padStart(10, '0')} ${FILL}\r\n`);
  const at = from - first * FLOOD_LINE;
  return lines.join('').slice(at, at + n);
}

/** The note a console writes where it skipped output (renderer/src/lib/termflow.ts). */
// eslint-disable-next-line no-control-regex
const NOTE = /\x18\x1b\[0m\r\n\x1b\[7m … (.+?) of output skipped \(arriving faster than it can be shown\) … \x1b\[0m\r\n/g;

export interface FloodSeen {
  /** Bytes of the flood missing at each skip, in order (0 skips: empty). */
  gaps: number[];
  /** Their sum. */
  skipped: number;
  /** The notes that said so (more than one per gap when skips followed each other). */
  notes: string[];
}

function fail(msg: string, text: string, at: number): never {
  throw new Error(`${msg}, at byte ${at} of what was shown: ${JSON.stringify(text.slice(Math.max(0, at - 40), at + 120))}`);
}

/** The first position where `got` and `want` differ (-1: none; `got` may be shorter). */
function firstDifference(got: string, want: string): number {
  if (got === want) return -1;
  for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) return i;
  return got.length === want.length ? -1 : got.length;
}

/**
 * Checks `shown`, everything the page handed its terminal from just before the flood of `bytes`
 * with `tag` until its end line, and says what was skipped. Throws where it is wrong.
 */
export function checkFlood(shown: string, bytes: number, tag: string): FloodSeen {
  const end = `\r\nTPUT-${tag}-END\r\n`;
  const endAt = shown.indexOf(end);
  if (endAt < 0) fail(`the end line TPUT-${tag}-END never came`, shown, shown.length);
  const after = shown.slice(endAt + end.length);
  if (after.length) fail('more came after the end line', shown, endAt + end.length);
  const body = shown.slice(0, endAt);

  const gaps: number[] = [];
  const notes: string[] = [];
  /** Position in the flood of the next byte expected. */
  let pos = 0;
  let afterNote = false;
  let at = 0; // position in `body`
  const place = (seg: string): void => {
    if (!seg.length) return;
    let from = pos;
    const resumed = afterNote;
    if (resumed) {
      // after a skip: the first whole line says where this part of the flood starts
      const k = /^\d{10} /.test(seg) ? 0 : seg.indexOf('\r\n') + 2;
      const m = k > 1 && k <= FLOOD_LINE ? /^(\d{10}) /.exec(seg.slice(k)) : k === 0 ? /^(\d{10}) /.exec(seg) : null;
      if (!m) fail('output after a skip note that is not a line of the flood', body, at);
      from = Number(m[1]) * FLOOD_LINE - k;
      if (from <= pos) fail(`a skip note without a gap (output resumes at ${from}, expected past ${pos})`, body, at);
      gaps.push(from - pos);
      afterNote = false;
    }
    const diff = firstDifference(seg, floodText(from, seg.length));
    if (diff >= 0 || from + seg.length > bytes)
      fail(
        `not the flood's bytes at flood position ${from + Math.max(0, diff)}${resumed ? '' : ' (a gap without a skip note?)'}`,
        body,
        at + Math.max(0, diff),
      );
    pos = from + seg.length;
  };
  NOTE.lastIndex = 0;
  for (let m = NOTE.exec(body); m; m = NOTE.exec(body)) {
    place(body.slice(at, m.index));
    notes.push(m[1]!);
    afterNote = true;
    at = m.index + m[0].length;
  }
  place(body.slice(at));
  if (afterNote) {
    // the end line came right after a note: the flood's last bytes were skipped
    if (pos >= bytes) fail('a skip note without a gap before the end line', body, body.length);
    gaps.push(bytes - pos);
  } else if (pos !== bytes) fail(`the flood stops at ${pos} of ${bytes} bytes without a skip note`, body, body.length);
  return { gaps, skipped: gaps.reduce((a, b) => a + b, 0), notes };
}
