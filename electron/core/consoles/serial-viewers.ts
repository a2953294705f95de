// Who watches which VM's serial output, and what each is sent. A client that cannot keep up
// (its transport's backlog passes a limit) is sent nothing more for a while rather than
// growing the host's memory. Once it has caught up, it gets the latest output it missed from
// the link's record, so the end of a flood always arrives; the offsets tell it what it did
// not get (all of it is in the log).
import type { Session } from '../api/dispatcher.js';
import type { SerialLink } from '../qemu/serial-link.js';

/** Bytes queued towards a client beyond which it is sent no more serial output for now. */
export const MAX_BACKLOG = 4 * 1024 * 1024;
/** The most a client is sent when it has caught up (the rest it is told it missed). */
const CATCH_UP_BYTES = 256 * 1024;

interface Viewer {
  /** Position of the first byte not sent, while the client is behind. */
  behindFrom: number | null;
  /** Stops waiting for the client to catch up. */
  cancel: (() => void) | null;
}

export class SerialViewers {
  private readonly sessions = new Map<Session, Map<string, Viewer>>();

  constructor(private readonly linkOf: (vmId: string) => SerialLink | null) {}

  add(s: Session, vmId: string): void {
    let vms = this.sessions.get(s);
    if (!vms) {
      this.sessions.set(s, (vms = new Map()));
      s.onClose(() => {
        for (const v of vms!.values()) v.cancel?.();
        this.sessions.delete(s);
      });
    }
    if (!vms.has(vmId)) vms.set(vmId, { behindFrom: null, cancel: null });
  }

  remove(s: Session, vmId: string): void {
    this.sessions.get(s)?.get(vmId)?.cancel?.();
    this.sessions.get(s)?.delete(vmId);
  }

  /** New output of a VM's link. */
  data(vmId: string, data: Buffer, offset: number): void {
    let b64: string | null = null;
    for (const [s, vms] of this.sessions) {
      const v = vms.get(vmId);
      if (!v || v.behindFrom !== null) continue;
      if (s.backlog() > MAX_BACKLOG) {
        v.behindFrom = offset;
        v.cancel = s.whenDrained(MAX_BACKLOG / 4, () => this.catchUp(s, vmId, v));
        continue;
      }
      s.send('serial.data', { vmId, data: (b64 ??= data.toString('base64')), offset });
    }
  }

  /** The VM's link closed (it stopped); a restarted VM has a new link, with new positions. */
  closed(vmId: string): void {
    for (const [s, vms] of this.sessions) {
      const v = vms.get(vmId);
      if (!v) continue;
      v.cancel?.();
      v.cancel = null;
      v.behindFrom = null;
      s.send('serial.closed', { vmId });
    }
  }

  private catchUp(s: Session, vmId: string, v: Viewer): void {
    v.cancel = null;
    const from = v.behindFrom!;
    v.behindFrom = null;
    const link = this.linkOf(vmId);
    const end = link?.offset;
    if (!link || end === null || end === undefined || end <= from) return;
    const start = Math.max(from, end - CATCH_UP_BYTES);
    const missed = link.recentFrom(start);
    if (missed?.length) s.send('serial.data', { vmId, data: missed.toString('base64'), offset: start });
  }
}
