// The caller's end of a serial console of a VM on another host: frames from the owner's stream
// become this session's serial.data, as if the VM were here. A session that cannot keep up
// stops the reading (the same limit as the local fan-out), so TCP holds the owner back and the
// owner's fan-out skips and catches up for it: neither host buffers without bound.
import type { Duplex } from 'node:stream';
import type { Session } from '../../api/dispatcher.js';
import { MAX_BACKLOG } from '../serial-viewers.js';
import { decodeFrame, LineSplitter } from './frames.js';

export interface SerialRelayDeps {
  /** Why the console ended, from what the owner said (null: nothing, it died or the network dropped). */
  why: (said: string | null, err: Error | null) => string;
  /** The relay is over (closed, detached or lost): forget it. */
  done: () => void;
}

export class SerialRelay {
  private over = false;
  private cancelDrain: (() => void) | null = null;
  private readonly lines = new LineSplitter();

  constructor(
    private readonly s: Session,
    readonly vmId: string,
    private readonly stream: Duplex,
    private readonly d: SerialRelayDeps,
  ) {
    stream.on('data', (chunk: Buffer) => this.take(chunk));
    let failure: Error | null = null;
    stream.on('error', (err) => (failure = err));
    stream.on('close', () => this.end(d.why(null, failure)));
    s.onClose(() => this.close());
  }

  private take(chunk: Buffer): void {
    let lines: string[];
    try {
      lines = this.lines.push(chunk);
    } catch (err) {
      return this.end(`the owner sent what is not a console: ${(err as Error).message}`);
    }
    for (const line of lines) {
      if (this.over) return;
      const f = decodeFrame(line);
      if (!f) continue;
      if (f.t === 'closed') return this.end(this.d.why(f.reason, null));
      this.s.send('serial.data', { vmId: this.vmId, data: f.data, offset: f.offset });
    }
    if (!this.cancelDrain && this.s.backlog() > MAX_BACKLOG) {
      this.stream.pause();
      this.cancelDrain = this.s.whenDrained(MAX_BACKLOG / 4, () => {
        this.cancelDrain = null;
        if (!this.over) this.stream.resume();
      });
    }
  }

  /** Ends the console and tells the session why; the page offers to open it again. */
  end(reason: string): void {
    if (this.over) return;
    this.stop();
    this.s.send('serial.closed', { vmId: this.vmId, reason });
  }

  /** Ends it without a word (serial.detach, the session closed). */
  close(): void {
    if (!this.over) this.stop();
  }

  private stop(): void {
    this.over = true;
    this.cancelDrain?.();
    this.cancelDrain = null;
    this.stream.destroy();
    this.d.done();
  }
}
