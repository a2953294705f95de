// Samples every running VM every 2 s while any runs, pushes the figures to subscribers, and
// keeps per-minute averages for a day. Nothing runs while no VM does.
import type { HostResources, VmStats } from '../api/contract.js';
import type { StatsRepo } from '../store/stats-repo.js';

import type { Cgroups } from './cgroups.js';
import { HostCpu, hostCpuCount, readHostMemory } from './host-capacity.js';
import { SAMPLE_MS, StatsBook, type Sampled } from './stats.js';

/** The running VMs to sample, and the memory they commit. */
export interface RunningSource {
  running(): Sampled[];
  committedBytes(): number;
}

const MINUTE = 60_000;

export class ResourceMonitor {
  private timer: NodeJS.Timeout | null = null;
  private readonly book = new StatsBook();
  private readonly cpu = new HostCpu();
  private lastMinute = Math.floor(Date.now() / MINUTE) * MINUTE;
  private busy = false;

  constructor(
    private readonly source: RunningSource,
    private readonly repo: StatsRepo,
    private readonly cgroups: Cgroups,
    private readonly overcommit: () => number,
    private readonly publish: (at: number, vms: VmStats[], host: HostResources) => void,
  ) {}

  start(): void {
    // a failed sample must not become an unhandled rejection: it would end the host process
    this.timer = setInterval(() => this.tick().catch(() => undefined), SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (!this.busy) this.book.close();
  }

  host(): HostResources {
    const mem = readHostMemory();
    const overcommit = this.overcommit();
    return {
      cpus: hostCpuCount(),
      memoryBytes: mem.totalBytes,
      memoryAvailableBytes: mem.availableBytes,
      cpuPercent: this.cpu.sample(),
      committedBytes: this.source.committedBytes(),
      commitLimitBytes: Math.floor(mem.totalBytes * overcommit),
      overcommit,
      cgroups: this.cgroups.status,
    };
  }

  stats(vmId: string, range: 'hour' | 'day'): VmStats[] {
    return range === 'hour' ? this.book.lastHour(vmId) : this.repo.day(vmId, Date.now());
  }

  private async tick(): Promise<void> {
    const running = this.source.running();
    if (this.busy) return;
    this.book.keepOnly(running);
    if (!running.length) return;
    this.busy = true;
    try {
      const now = Date.now();
      const samples = (await Promise.all(running.map((r) => this.book.sample(r, now)))).filter((s): s is VmStats => s !== null);
      if (!this.timer) {
        this.book.close();
        return; // stopped while sampling: the store may be closed already
      }
      this.publish(now, samples, this.host());
      const minute = Math.floor(now / MINUTE) * MINUTE;
      if (minute > this.lastMinute) {
        this.repo.add(this.book.minuteAverages(this.lastMinute, minute), now);
        this.lastMinute = minute;
      }
    } finally {
      this.busy = false;
    }
  }
}
