// The fencer's decision, apart from its process: the latest deadline and the QEMUs it guards.
// When CLOCK_MONOTONIC passes the deadline with no later one, every guarded QEMU that is still
// the same process (pid and start time) is SIGKILLed and the fence is recorded. Nothing here
// waits on the host: a host that froze or lost etcd simply stops sending later deadlines.
import { mergeFence, type FenceRecord, type FencerMessage, type Guard } from './protocol';

export interface FencerDeps {
  nowMs(): number;
  /** Runs fn after ms; returns a cancel function. */
  after(ms: number, fn: () => void): () => void;
  /** The process's start time, or null when it is gone. */
  startTime(pid: number): string | null;
  kill(pid: number): void;
  record(rec: FenceRecord): void;
  /** The record left by an earlier fence the host has not cleared yet, if any. */
  previous?(): FenceRecord | null;
  clearRecord(): void;
  log(line: string): void;
}

export class Fencer {
  private deadlineMs: number | null = null;
  private guards: Guard[] = [];
  private cancel: (() => void) | null = null;
  /** The deadline last fenced at: an arm at or before it is a late message, never a new fence. */
  private fencedAt: number | null = null;
  /** Fenced, and the host has not cleared the fence with a fresh lease yet. */
  private fenced = false;

  constructor(private readonly deps: FencerDeps) {}

  get armed(): boolean {
    return this.deadlineMs !== null;
  }

  /** The deadline held (CLOCK_MONOTONIC ms), null when disarmed. */
  get deadline(): number | null {
    return this.deadlineMs;
  }

  handle(msg: FencerMessage): void {
    if (msg.op === 'disarm') {
      this.disarm();
      this.deps.log('disarmed: the host left the cluster');
    } else if (msg.op === 'clear-fence') {
      this.fenced = false;
      this.deps.clearRecord();
      this.deps.log('fence record cleared: the host is back with a fresh lease');
    } else {
      if (this.fencedAt !== null && msg.deadlineMs <= this.fencedAt) {
        // an HA QEMU the host tells of only now (a start under way when the fence struck): it
        // runs on a fenced host whose guests another host is about to start, so it goes too
        if (this.fenced) this.killLate(msg.guards);
        return;
      }
      // a deadline never moves back: a delayed message must not shorten nor, worse, extend a stale one
      if (this.deadlineMs !== null && msg.deadlineMs < this.deadlineMs) {
        this.guards = msg.guards;
        return;
      }
      this.deadlineMs = msg.deadlineMs;
      this.guards = msg.guards;
      this.schedule();
    }
  }

  private disarm(): void {
    this.cancel?.();
    this.cancel = null;
    this.deadlineMs = null;
    this.guards = [];
  }

  private schedule(): void {
    this.cancel?.();
    const wait = Math.max(0, (this.deadlineMs ?? 0) - this.deps.nowMs());
    this.cancel = this.deps.after(wait, () => this.check());
  }

  private check(): void {
    if (this.deadlineMs === null) return;
    // timers may fire a little early; only the clock decides
    if (this.deps.nowMs() < this.deadlineMs) return this.schedule();
    this.fence();
  }

  /** SIGKILLs each guard that is still the same process. */
  private killAll(guards: Guard[]): { killed: Guard[]; gone: Guard[] } {
    const killed: Guard[] = [];
    const gone: Guard[] = [];
    for (const g of guards) {
      if (this.deps.startTime(g.pid) !== g.startTime) {
        gone.push(g);
        continue;
      }
      try {
        this.deps.kill(g.pid);
        killed.push(g);
      } catch {
        gone.push(g); // exited between the check and the kill
      }
    }
    return { killed, gone };
  }

  private killLate(guards: Guard[]): void {
    const { killed } = this.killAll(guards);
    if (!killed.length) return; // those the fence killed already, or none
    const rec: FenceRecord = { at: Date.now(), deadlineMs: this.fencedAt!, firedMs: this.deps.nowMs(), killed, gone: [] };
    this.deps.record(mergeFence(this.deps.previous?.() ?? null, rec));
    this.deps.log(`FENCED late: killed ${killed.map((g) => `${g.vm} (pid ${g.pid})`).join(', ')}, started after the fence`);
  }

  private fence(): void {
    const deadlineMs = this.deadlineMs!;
    this.fencedAt = deadlineMs;
    this.fenced = true;
    const firedMs = this.deps.nowMs();
    const { killed, gone } = this.killAll(this.guards);
    this.disarm();
    // a fence right after another (a late deadline of a lease taken while cut off) must not
    // overwrite what the first one killed: the host has not read it yet
    this.deps.record(mergeFence(this.deps.previous?.() ?? null, { at: Date.now(), deadlineMs, firedMs, killed, gone }));
    this.deps.log(
      `FENCED ${(firedMs - deadlineMs).toFixed(1)} ms after the deadline: killed ${killed.map((g) => `${g.vm} (pid ${g.pid})`).join(', ') || 'nothing'}` +
        (gone.length ? `; already gone or pid reused: ${gone.map((g) => `${g.vm} (pid ${g.pid})`).join(', ')}` : ''),
    );
  }
}
