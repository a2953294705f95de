// Progress of a RAM snapshot while QEMU writes it. QEMU 7.2 runs `snapshot-save` in its main
// loop and reports the job's progress only once it is over, so the host measures it from outside:
// what QEMU has written since the job began (its write(2) byte count; the vCPUs are stopped, so
// that is the snapshot) against what there is to write (the guest RAM QEMU holds resident: zero
// pages cost QEMU a few bytes each, touched ones a page). An estimate, never shown as done: the
// job's own end says that.
import type { Clock } from '../clock.js';
import { processBytesWritten, processResidentBytes } from '../qemu/proc.js';

/** How often the meter looks: a bar that moves, for a cost of two small /proc reads. */
const SAMPLE_MS = 250;
/** The share a measured estimate may show at the most before QEMU says the job is over. */
const CAP = 0.99;

export interface VmstateSample {
  written: number;
  total: number;
}

/** Samples the bytes a QEMU wrote since `start()`, against the RAM it has to write. */
export class VmstateMeter {
  private readonly base: number;
  private readonly total: number;

  private constructor(
    private readonly pid: number,
    base: number,
    total: number,
  ) {
    this.base = base;
    this.total = total;
  }

  /** Null when /proc does not tell (another OS, a process that is gone). */
  static start(pid: number, memoryBytes: number): VmstateMeter | null {
    const base = processBytesWritten(pid);
    const rss = processResidentBytes(pid);
    if (base === null || rss === null || memoryBytes <= 0) return null;
    return new VmstateMeter(pid, base, Math.max(1, Math.min(rss, memoryBytes)));
  }

  sample(): VmstateSample | null {
    const now = processBytesWritten(this.pid);
    if (now === null) return null;
    return { written: Math.min(now - this.base, Math.floor(this.total * CAP)), total: this.total };
  }
}

/** Reports `meter`'s samples through `report` until the returned stop is called. */
export function reportWhileSaving(clock: Clock, meter: VmstateMeter, report: (s: VmstateSample) => void): () => void {
  let stopped = false;
  let cancel = (): void => undefined;
  const tick = (): void => {
    if (stopped) return;
    const s = meter.sample();
    if (s && s.written > 0) report(s);
    cancel = clock.after(SAMPLE_MS, tick);
  };
  cancel = clock.after(SAMPLE_MS, tick);
  return () => {
    stopped = true;
    cancel();
  };
}
