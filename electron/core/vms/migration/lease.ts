// The lease between the two hosts of a migration. While it moves a VM the source touches the
// arrival every few seconds; the target drops an arrival not touched for ARRIVAL_IDLE_MS (its
// source died, or the link between them is cut), and the source gives up on a target that has
// not answered a touch for STALL_MS. Either way nothing waits for TCP to give up, and a target
// cut off mid-migration keeps no "incoming" VM or waiting QEMU.
import { CorralError } from '../../api/dispatcher.js';
import type { PeerClient } from './peer.js';
import { STALL_MS } from './stall.js';

export const TOUCH_EVERY_MS = 5000;
/** A touch not answered in this long counts as not answered. */
const TOUCH_TIMEOUT_MS = 10_000;
/** The target drops an arrival its source has not touched for this long: twice the source's own limit. */
export const ARRIVAL_IDLE_MS = 2 * STALL_MS;

/** The source's side: touches the arrival until stopped; `signal` aborts when the target stopped answering. */
export class TargetLease {
  private lastAnswer: number;
  private timer: NodeJS.Timeout | null = null;
  private readonly lost = new AbortController();

  constructor(
    private readonly peer: PeerClient,
    private readonly vmId: string,
    private readonly limitMs = STALL_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.lastAnswer = now();
  }

  /** Aborted once no touch has been answered for the limit. */
  get signal(): AbortSignal {
    return this.lost.signal;
  }

  start(): void {
    this.timer = setInterval(() => void this.touch(), TOUCH_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Throws once the target has not answered for the limit. */
  check(): void {
    if (this.silentFor() >= this.limitMs)
      throw new CorralError(
        'failed',
        `the target host has not answered for ${Math.round(this.silentFor() / 1000)} s: the link to it or the host failed`,
      );
  }

  /** `p`, unless the target is lost first: a call to it whose answer may never come. */
  guard<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onLost = () => {
        try {
          this.check();
        } catch (err) {
          reject(err as Error);
        }
      };
      p.then(resolve, reject).finally(() => this.signal.removeEventListener('abort', onLost));
      if (this.signal.aborted) onLost();
      else this.signal.addEventListener('abort', onLost, { once: true });
    });
  }

  private silentFor(): number {
    return this.now() - this.lastAnswer;
  }

  private async touch(): Promise<void> {
    const sent = this.now();
    try {
      await within(TOUCH_TIMEOUT_MS, this.peer.call('migration.touchIncoming', { vm: this.vmId }));
      this.lastAnswer = Math.max(this.lastAnswer, sent);
    } catch {
      // unanswered: counted by silentFor
    }
    if (!this.lost.signal.aborted && this.silentFor() >= this.limitMs) this.lost.abort();
  }
}

/** `p`, or a rejection once `ms` have passed (what `p` was doing goes on until its own end). */
export function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
