// Joining the scrollback (serial.log, which ends at position `size`) and the live stream
// (serial.data, each chunk at its position): what the scrollback showed is not shown again,
// and a jump ahead is output this client was not sent (it fell behind; the log has it).

export interface Joined {
  /** Bytes to show now. */
  show: Uint8Array;
  /** Bytes skipped before them (0: none). */
  missed: number;
}

export class StreamJoin {
  #next: number;

  /** `from`: the position just past what is already shown. */
  constructor(from: number) {
    this.#next = from;
  }

  take(bytes: Uint8Array, offset: number): Joined {
    const end = offset + bytes.length;
    if (end <= this.#next) return { show: bytes.subarray(0, 0), missed: 0 };
    const missed = Math.max(0, offset - this.#next);
    const show = offset < this.#next ? bytes.subarray(this.#next - offset) : bytes;
    this.#next = end;
    return { show, missed };
  }
}
