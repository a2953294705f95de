// Optional: the Linux watchdog (softdog or hardware) behind the fencer. Each level covers what
// the one above cannot:
//   - the lease deadline in the fencer: the host process froze, crashed, or lost etcd;
//   - the watchdog: the fencer itself or the whole kernel froze (no process runs to kill QEMU).
//     The fencer pets the device only while the deadline is more than its timeout away, so if
//     it stops running, the machine resets before the deadline; softdog is a kernel timer and
//     misses a hard lockup of the kernel, a hardware watchdog does not. The timeout must be
//     shorter than the least time to the deadline between renewals (TTL − margin − interval,
//     5.5 s with the defaults), else a healthy host is reset.
// Never armed in tests: an expired watchdog reboots the machine.
import fs from 'node:fs';
import type { Fencer } from './fencer';

export class Watchdog {
  private fd: number;
  private timer: NodeJS.Timeout;

  constructor(
    device: string,
    private readonly timeoutSec: number,
    private readonly fencer: Fencer,
    private readonly nowMs: () => number,
    private readonly log: (line: string) => void,
  ) {
    if (!Number.isFinite(timeoutSec) || timeoutSec < 1) throw new Error(`--watchdog-sec: at least 1 (got ${timeoutSec})`);
    this.fd = fs.openSync(device, 'w');
    this.timer = setInterval(() => this.pet(), 1000);
  }

  private pet(): void {
    const d = this.fencer.deadline;
    if (d !== null && this.nowMs() + this.timeoutSec * 1000 >= d) return; // let it run out: we may be next to freeze
    try {
      fs.writeSync(this.fd, 'k');
    } catch (err) {
      this.log(`watchdog: ${(err as Error).message}`);
    }
  }

  /** The magic close: a clean exit must not reboot the machine. */
  close(): void {
    clearInterval(this.timer);
    try {
      fs.writeSync(this.fd, 'V');
      fs.closeSync(this.fd);
    } catch {}
  }
}
