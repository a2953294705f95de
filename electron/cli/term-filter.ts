// Guest output on the user's terminal, with the escape sequences that reach beyond the text
// taken out: a guest must not write the clipboard (OSC 52), retitle the window, plant links
// (OSC 8), make the terminal type an answer (DSR, DA, ENQ, DECID, window reports, mouse
// modes) or feed it DCS/APC/PM/SOS strings. Colours (SGR), cursor movement, erasing and UTF-8
// text pass. A stream filter: a sequence split across two chunks is still recognised.

const ESC = 0x1b;
const BEL = 0x07;
const ENQ = 0x05;
const CAN = 0x18;
const SUB = 0x1a;

/** CSI finals kept when there is no private marker: SGR, cursor, erase, insert/delete, scroll, margins. */
const CSI_KEEP = new Set('mABCDEFGHJKSTfdeaLMP@X`rsuhl'.split('').map((c) => c.charCodeAt(0)));
/** With a private marker ("?"), only modes and selective erase. */
const CSI_PRIVATE_KEEP = new Set('hlJK'.split('').map((c) => c.charCodeAt(0)));
/** Modes that make the terminal report the mouse or focus as input. */
const REPORTING_MODES = new Set([9, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1015, 1016]);
/** ESC + final kept: save/restore cursor, keypad modes, index, next line, reverse index, reset. */
const ESC_KEEP = new Set('78=>DEMc'.split('').map((c) => c.charCodeAt(0)));
/** ESC + intermediate + final kept: character set designation. */
const CHARSET_INTERMEDIATES = new Set('()*+-./'.split('').map((c) => c.charCodeAt(0)));

/** Most bytes held for one CSI or ESC sequence; a longer one is dropped. */
const MAX_SEQ = 256;
/** Most bytes of a string (OSC, DCS...) swallowed waiting for its end: then it counts as ended. */
const MAX_STRING = 64 * 1024;

const enum State {
  Ground,
  Esc,
  Csi,
  /** Inside OSC/DCS/SOS/PM/APC: dropped until ST (or BEL, for OSC). */
  Str,
  /** ESC seen inside a string: ST if "\" follows. */
  StrEsc,
}

export class TermFilter {
  private state = State.Ground;
  private seq: number[] = [];
  private strLen = 0;
  private strIsOsc = false;
  /** Continuation bytes still due for the UTF-8 character in progress. */
  private utf8Due = 0;
  /** A 0xC2 lead byte held back: with 0x80-0x9F it encodes a C1 control. */
  private c2Held = false;

  /** Filters one chunk; what may still turn out to be part of a sequence is held for the next. */
  push(chunk: Uint8Array): Buffer {
    // usually the same size or smaller; a sequence held from the last chunk, or an 8-bit CSI
    // going out as ESC [, can make it longer
    let out = Buffer.allocUnsafe(chunk.length + 64);
    let n = 0;
    const emit = (b: number) => {
      if (n === out.length) out = Buffer.concat([out, Buffer.allocUnsafe(out.length)]);
      out[n++] = b;
    };
    for (const b of chunk) {
      if (this.c2Held) {
        this.c2Held = false;
        if (b >= 0x80 && b <= 0x9f) {
          this.c1(b);
          continue;
        }
        if (this.state === State.Ground) emit(0xc2);
      }
      this.byte(b, emit);
    }
    return out.subarray(0, n);
  }

  /** Whatever is held back at the end of the stream: an unfinished sequence is dropped. */
  end(): Buffer {
    const rest = this.c2Held && this.state === State.Ground ? Buffer.from([0xc2]) : Buffer.alloc(0);
    this.c2Held = false;
    this.toGround();
    return rest;
  }

  private byte(b: number, emit: (b: number) => void): void {
    switch (this.state) {
      case State.Ground:
        return this.ground(b, emit);
      case State.Esc:
        return this.esc(b, emit);
      case State.Csi:
        return this.csi(b, emit);
      case State.Str:
        if (b === ESC) this.state = State.StrEsc;
        else if ((b === BEL && this.strIsOsc) || b === CAN || b === SUB || ++this.strLen > MAX_STRING) this.toGround();
        else if (b === 0xc2) this.c2Held = true; // C1 ST (0xC2 0x9C) ends it too
        return;
      case State.StrEsc:
        this.toGround();
        if (b !== 0x5c) {
          // not ST: the string ended all the same, and a new sequence begins
          this.byte(ESC, emit);
          this.byte(b, emit);
        }
        return;
    }
  }

  private ground(b: number, emit: (b: number) => void): void {
    if (this.utf8Due > 0 && b >= 0x80 && b <= 0xbf) {
      this.utf8Due--;
      emit(b);
      return;
    }
    this.utf8Due = 0;
    if (b === ESC) {
      this.state = State.Esc;
      this.seq = [b];
    } else if (b === ENQ) {
      // answerback: dropped
    } else if (b === 0xc2) {
      this.c2Held = true;
    } else if (b >= 0x80 && b <= 0x9f) {
      this.c1(b); // a raw 8-bit control
    } else {
      if (b >= 0xc3 && b <= 0xdf) this.utf8Due = 1;
      else if (b >= 0xe0 && b <= 0xef) this.utf8Due = 2;
      else if (b >= 0xf0 && b <= 0xf4) this.utf8Due = 3;
      emit(b);
    }
  }

  /** A C1 control (raw or UTF-8 encoded): the string and CSI introducers start what their ESC forms do; the rest are dropped. */
  private c1(b: number): void {
    if (this.state === State.Str) {
      if (b === 0x9c) this.toGround(); // ST
      return;
    }
    this.seq = [];
    if (b === 0x9b) this.state = State.Csi;
    else if (b === 0x9d || b === 0x90 || b === 0x98 || b === 0x9e || b === 0x9f) this.startString(b === 0x9d);
    else this.toGround();
  }

  private esc(b: number, emit: (b: number) => void): void {
    if (this.interrupts(b, emit)) return;
    this.seq.push(b);
    if (this.seq.length === 2) {
      if (b === 0x5b) return void (this.state = State.Csi); // [
      if (b === 0x5d) return this.startString(true); // ]
      if (b === 0x50 || b === 0x58 || b === 0x5e || b === 0x5f) return this.startString(false); // P X ^ _
    }
    if (b >= 0x20 && b <= 0x2f && this.seq.length < 4) return; // an intermediate
    if (b >= 0x30 && b <= 0x7e) {
      const keep = this.seq.length === 2 ? ESC_KEEP.has(b) : this.seq.length === 3 && CHARSET_INTERMEDIATES.has(this.seq[1]!);
      if (keep) this.seq.forEach(emit);
    }
    this.toGround();
  }

  private csi(b: number, emit: (b: number) => void): void {
    if (this.interrupts(b, emit)) return;
    this.seq.push(b);
    if (b >= 0x40 && b <= 0x7e) {
      if (this.csiAllowed()) {
        const seq = this.seq[0] === ESC ? this.seq : [ESC, 0x5b, ...this.seq]; // an 8-bit CSI goes out in its 7-bit form
        seq.forEach(emit);
      }
      this.toGround();
    }
  }

  /**
   * Bytes that act in the middle of a CSI or ESC sequence: C0 controls are executed (ENQ
   * dropped), CAN and SUB cancel, ESC starts over, and a byte that cannot belong (8-bit, or
   * past the length limit) ends the sequence unsent and is read as text.
   */
  private interrupts(b: number, emit: (b: number) => void): boolean {
    if (b === CAN || b === SUB) this.toGround();
    else if (b === ESC) {
      this.state = State.Esc;
      this.seq = [b];
    } else if (b < 0x20) {
      if (b !== ENQ) emit(b);
    } else if (b >= 0x80 || this.seq.length > MAX_SEQ) {
      this.toGround();
      this.ground(b, emit);
    } else return false;
    return true;
  }

  private csiAllowed(): boolean {
    const body = this.seq[0] === ESC ? this.seq.slice(2) : this.seq;
    const final = body[body.length - 1]!;
    const params = body.slice(0, -1);
    if (params.some((c) => c >= 0x20 && c <= 0x2f)) return false; // intermediates: requests and rarely used settings
    const marker = params[0] !== undefined && params[0] >= 0x3c && params[0] <= 0x3f ? params[0] : null;
    if (marker === null) return CSI_KEEP.has(final);
    if (marker !== 0x3f || !CSI_PRIVATE_KEEP.has(final)) return false;
    if (final === 0x68 || final === 0x6c) {
      const modes = String.fromCharCode(...params.slice(1))
        .split(';')
        .map(Number);
      return !modes.some((m) => REPORTING_MODES.has(m));
    }
    return true;
  }

  private startString(osc: boolean): void {
    this.state = State.Str;
    this.strIsOsc = osc;
    this.strLen = 0;
    this.seq = [];
  }

  private toGround(): void {
    this.state = State.Ground;
    this.seq = [];
    this.utf8Due = 0;
  }
}

/** Filters a whole buffer at once. */
export function filterTerminal(data: Uint8Array): Buffer {
  const f = new TermFilter();
  return Buffer.concat([f.push(data), f.end()]);
}

/** Writes base64 guest output to stdout, filtered unless `raw`; `end()` flushes what is held back. */
export function guestOutput(raw: boolean): ((base64: string) => void) & { end(): void } {
  const filter = raw ? null : new TermFilter();
  const print = (base64: string) => {
    const bytes = Buffer.from(base64, 'base64');
    process.stdout.write(filter ? filter.push(bytes) : bytes);
  };
  return Object.assign(print, { end: () => filter && process.stdout.write(filter.end()) });
}
