// Long copies (clone, export, import) as jobs: progress events to the caller (bytes done, rate,
// time left), and cancel by the id the caller chose, so it can cancel before the call returns.
import type { EventMap } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';

export type JobProgress = EventMap['job.progress'];
type Op = JobProgress['op'];

/** Progress is pushed at most this often (and once at the end). */
const EVERY_MS = 250;

export class Job {
  readonly abort = new AbortController();
  private done = 0;
  private startedAt = Date.now();
  private lastSent = 0;
  phase = '';

  constructor(
    readonly id: string,
    readonly op: Op,
    readonly vm: string,
    public total: number,
    private readonly send: (p: JobProgress) => void,
  ) {}

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** A new phase with its own byte count (a conversion, then the archive). */
  begin(phase: string, total: number): void {
    this.phase = phase;
    this.total = total;
    this.done = 0;
    this.startedAt = Date.now();
    this.emit(true);
  }

  add(bytes: number): void {
    this.done += bytes;
    this.emit(false);
  }

  set(bytes: number): void {
    this.done = bytes;
    this.emit(false);
  }

  finish(): void {
    this.done = this.total;
    this.emit(true);
  }

  /** Throws the cancellation if the caller cancelled. */
  check(): void {
    if (this.signal.aborted) throw cancelled(this.op);
  }

  private emit(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastSent < EVERY_MS) return;
    this.lastSent = now;
    const secs = (now - this.startedAt) / 1000;
    const rateBps = secs > 0.2 ? Math.round(this.done / secs) : 0;
    const etaSec = rateBps > 0 && this.total > this.done ? Math.ceil((this.total - this.done) / rateBps) : null;
    this.send({ job: this.id, op: this.op, vm: this.vm, phase: this.phase, done: this.done, total: this.total, rateBps, etaSec });
  }
}

export function cancelled(op: Op): CorralError {
  return new CorralError('failed', `${op} cancelled; nothing was left behind`);
}

export class Jobs {
  private readonly running = new Map<string, Job>();

  /** Runs fn as job `id` (a fresh one when the caller gave none). */
  async run<T>(id: string | undefined, op: Op, vm: string, send: (p: JobProgress) => void, fn: (job: Job) => Promise<T>): Promise<T> {
    const jobId = id ?? `${op}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    if (this.running.has(jobId)) throw new CorralError('conflict', `a job "${jobId}" is already running`, 'job');
    const job = new Job(jobId, op, vm, 0, send);
    this.running.set(jobId, job);
    try {
      return await fn(job);
    } catch (err) {
      if (job.signal.aborted) throw cancelled(op);
      throw err;
    } finally {
      this.running.delete(jobId);
    }
  }

  cancel(id: string): void {
    const job = this.running.get(id);
    if (!job) throw new CorralError('not-found', `no running job "${id}"`, 'job');
    job.abort.abort();
  }
}
