// Publishes this host's room (hosts.ts HostAlive) under its cluster lease. Every write is a raft
// proposal that each etcd member logs, syncs and sends to every host's watch: rewritten every
// 5 s whatever it held, it was most of an idle cluster's etcd work. So the 5 s tick writes only
// when a figure placement or balancing decides on has moved past its noise, and at least once a
// minute; a change of this host's VMs, and a new lease, write at once.
import type { HostAlive } from './hosts.js';

export type Room = Omit<HostAlive, 'at'>;

const TICK_MS = 5000;
/** Changes of VMs within this long go out in one publication. */
const SOON_MS = 100;
/** Even unchanged, the room is written this often. */
export const REFRESH_MS = 60_000;
const MiB = 1024 * 1024;
/** Steps below which a figure counts as noise. */
const STEP = { memoryBytes: 128 * MiB, hostCpuPercent: 10, guestCpu: 0.05, guestMemBytes: 16 * MiB };

const far = (a: number | undefined, b: number | undefined, step: number) =>
  (a === undefined) !== (b === undefined) || Math.abs((a ?? 0) - (b ?? 0)) >= step;

/** Whether `next` differs from what was published in a way a reader of the room would act on. */
export function roomMoved(prev: Room, next: Room): boolean {
  if (
    prev.cpus !== next.cpus ||
    prev.memoryBytes !== next.memoryBytes ||
    prev.committedBytes !== next.committedBytes ||
    prev.vms !== next.vms ||
    prev.running !== next.running ||
    prev.overcommit !== next.overcommit ||
    JSON.stringify(prev.cannotRun ?? {}) !== JSON.stringify(next.cannotRun ?? {})
  )
    return true;
  if (far(prev.availableBytes, next.availableBytes, STEP.memoryBytes)) return true;
  if (far(prev.cpuPercent, next.cpuPercent, STEP.hostCpuPercent)) return true;
  const [a, b] = [prev.load, next.load];
  if (!a || !b) return a !== b;
  const ids = Object.keys(b.vms);
  if (ids.length !== Object.keys(a.vms).length) return true;
  return ids.some((id) => {
    const [x, y] = [a.vms[id], b.vms[id]!];
    return !x || far(x.cpu, y.cpu, STEP.guestCpu) || far(x.memBytes, y.memBytes, STEP.guestMemBytes);
  });
}

export class AlivePublisher {
  private last: { room: Room; at: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private due: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly room: () => Room,
    private readonly write: (alive: HostAlive) => Promise<void>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Writes the room now: at start, and under a new lease (the old one took the key with it). */
  publish(): Promise<void> {
    return this.put(this.room());
  }

  /** Writes the room if it moved, or has not been written for a minute. */
  async refresh(): Promise<void> {
    const room = this.room();
    const last = this.last;
    if (last && this.now() - last.at < REFRESH_MS && !roomMoved(last.room, room)) return;
    await this.put(room);
  }

  private async put(room: Room): Promise<void> {
    const at = this.now();
    await this.write({ at, ...room });
    this.last = { room, at };
  }

  start(): void {
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), TICK_MS);
  }

  /** A VM started, stopped or changed here: its room goes out now, batched with others close by. */
  readonly soon = (): void => {
    if (this.due || this.closed) return;
    this.due = setTimeout(() => {
      this.due = null;
      if (!this.closed) void this.publish().catch(() => undefined);
    }, SOON_MS);
  };

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.due) clearTimeout(this.due);
  }
}
