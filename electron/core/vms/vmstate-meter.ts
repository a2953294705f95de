// Progress of a RAM snapshot's save or load while QEMU does it. QEMU 7.2 runs `snapshot-save`
// and `snapshot-load` in its main loop and reports a job's progress only once it is over, so the
// host measures it from outside: the bytes QEMU has written (a save) or read (a load) since the
// job began, against what there is to move. The vCPUs are stopped meanwhile, so that I/O is the
// snapshot's. A save's total is an estimate (the guest RAM QEMU holds resident: zero pages cost
// a few bytes each, touched ones a page); a load's is the RAM state's size as the image records
// it. Never shown as done: the job's own end says that.
import type { Clock } from '../clock.js';
import { processIoBytes, processResidentBytes } from '../qemu/proc.js';

/** How often the meter looks: a bar that moves, for the cost of a small /proc read. */
const SAMPLE_MS = 250;
/** The share a measure may show at the most before QEMU says the job is over. */
const CAP = 0.99;

export interface VmstateSample {
  moved: number;
  total: number;
}

/** Samples the bytes a QEMU moved since the meter started, against the total to move. */
export class VmstateMeter {
  private constructor(
    private readonly pid: number,
    private readonly which: 'rchar' | 'wchar',
    private readonly base: number,
    private readonly total: number,
  ) {}

  /** For a save: what QEMU writes, against the RAM it holds (at most `memoryBytes`). Null when /proc does not tell. */
  static forSave(pid: number, memoryBytes: number): VmstateMeter | null {
    const rss = processResidentBytes(pid);
    return rss === null ? null : VmstateMeter.start(pid, 'wchar', Math.min(rss, memoryBytes));
  }

  /** For a load: what QEMU reads, against the size of the RAM state it loads. */
  static forLoad(pid: number, vmStateBytes: number): VmstateMeter | null {
    return VmstateMeter.start(pid, 'rchar', vmStateBytes);
  }

  private static start(pid: number, which: 'rchar' | 'wchar', total: number): VmstateMeter | null {
    const base = processIoBytes(pid, which);
    return base === null || total <= 0 ? null : new VmstateMeter(pid, which, base, total);
  }

  sample(): VmstateSample | null {
    const now = processIoBytes(this.pid, this.which);
    if (now === null) return null;
    return { moved: Math.min(now - this.base, Math.floor(this.total * CAP)), total: this.total };
  }
}

/** Runs `work`, reporting `meter`'s samples through `report` every SAMPLE_MS until it ends. */
export async function metered<T>(
  clock: Clock,
  meter: VmstateMeter | null,
  report: (s: VmstateSample) => void,
  work: () => Promise<T>,
): Promise<T> {
  let stopped = !meter;
  let cancel = (): void => undefined;
  const tick = (): void => {
    if (stopped) return;
    const s = meter!.sample();
    if (s && s.moved > 0) report(s);
    cancel = clock.after(SAMPLE_MS, tick);
  };
  if (meter) cancel = clock.after(SAMPLE_MS, tick);
  try {
    return await work();
  } finally {
    stopped = true;
    cancel();
  }
}
