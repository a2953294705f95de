// A migration whose stream stops moving. With the link to the target cut (or the target frozen),
// QEMU's writes block and nothing fails until TCP gives up, many minutes later; meanwhile the
// guest's host holds the VM's lock and the user waits. So the source watches the figures it
// polls anyway (bytes sent, disk offsets) and gives up once none of them has changed for a while.
// The target's side is the arrival lease in incoming.ts.
import { CorralError } from '../../api/dispatcher.js';

/** No change in the figures for this long: the stream is stalled. Far above any pause of a working one. */
export const STALL_MS = 30_000;

export class StallWatch {
  private last: string | null = null;
  private since: number;

  constructor(
    private readonly what: string,
    private readonly limitMs = STALL_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.since = now();
  }

  /** Throws once `figures` (anything that changes while data flows) have stayed the same for the limit. */
  check(...figures: number[]): void {
    const key = figures.join(',');
    const t = this.now();
    if (key !== this.last) {
      this.last = key;
      this.since = t;
      return;
    }
    if (t - this.since >= this.limitMs) throw stalled(this.what, this.limitMs);
  }
}

export function stalled(what: string, limitMs: number): CorralError {
  return new CorralError(
    'failed',
    `${what} made no progress for ${Math.round(limitMs / 1000)} s: the link to the target or the target failed`,
  );
}
