// The host's liveness in the cluster: one etcd lease, renewed by us rather than by the etcd3
// library's autoKeepAlive (its `lost` fires only after 2×TTL without an ack, long after another
// host may have started our guests). What matters is when each acknowledged keepalive was *sent*:
// etcd cannot expire the lease sooner than TTL after it received that keepalive, so until
// send + TTL the lease is certainly alive. The fencer kills our HA guests at send + TTL − margin.
import { EtcdLeaseInvalidError, type Etcd3 } from 'etcd3';
import { monotonicMs } from './monotonic';

/** The two lease calls the keeper makes: etcd3's Lease, or a simulated one in scenario tests. */
export interface LeaseApi {
  grant(): Promise<string>;
  /** Resolves with the TTL etcd answered (≤ 0: the lease is gone). */
  keepalive(): Promise<number>;
  revoke(): Promise<void>;
}

/** etcd3's lease without its automatic keepalive. */
export function etcdLease(etcd: Etcd3, ttlSec: number): LeaseApi & { lease: ReturnType<Etcd3['lease']> } {
  const lease = etcd.lease(ttlSec, { autoKeepAlive: false });
  lease.on('lost', () => undefined); // we judge loss ourselves; an unhandled 'lost' would throw
  return {
    lease,
    grant: () => lease.grant(),
    keepalive: () =>
      lease.keepaliveOnce().then(
        (res) => Number(res.TTL),
        (err: unknown) => {
          if (err instanceof EtcdLeaseInvalidError) return 0; // expired or revoked at etcd
          throw err;
        },
      ),
    revoke: () => lease.revoke(),
  };
}

export interface KeeperTimers {
  nowMs(): number;
  after(ms: number, fn: () => void): () => void;
}

const realTimers: KeeperTimers = {
  nowMs: monotonicMs,
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

export interface LeaseKeeperOptions {
  /** Lease TTL in seconds (etcd's minimum is 2). */
  ttlSec?: number;
  /** How long before the earliest possible expiry the fencer acts, in ms. */
  marginMs?: number;
  /** How often a keepalive is sent, in ms (default TTL/4). */
  intervalMs?: number;
  /** Told each later deadline, in CLOCK_MONOTONIC ms (see monotonic.ts). */
  onDeadline(deadlineMs: number): void;
  /** A keepalive was refused: the lease is gone at etcd (expired or revoked). */
  onLost?(why: string): void;
  timers?: KeeperTimers;
}

export const DEFAULT_TTL_SEC = 10;
export const DEFAULT_MARGIN_MS = 2000;
/** Keepalives sent and not yet answered: a stalled etcd must not pile them up without bound. */
const MAX_IN_FLIGHT = 3;

export class LeaseKeeper {
  readonly ttlSec: number;
  readonly marginMs: number;
  private readonly intervalMs: number;
  private readonly timers: KeeperTimers;
  private api: LeaseApi | null = null;
  private id: string | null = null;
  private cancel: (() => void) | null = null;
  private inFlight = 0;
  private stopped = false;
  private lastAckedSendMs: number | null = null;

  constructor(
    private readonly makeLease: (ttlSec: number) => LeaseApi,
    private readonly opts: LeaseKeeperOptions,
  ) {
    this.ttlSec = opts.ttlSec ?? DEFAULT_TTL_SEC;
    this.marginMs = opts.marginMs ?? DEFAULT_MARGIN_MS;
    if (!Number.isInteger(this.ttlSec) || this.ttlSec < 2) throw new Error(`ttlSec: etcd's minimum lease TTL is 2 s (got ${this.ttlSec})`);
    if (!(this.marginMs >= 0 && this.marginMs < this.ttlSec * 1000))
      throw new Error(`marginMs: must be from 0 to under the TTL (${this.ttlSec * 1000} ms), got ${this.marginMs}`);
    this.intervalMs = opts.intervalMs ?? Math.floor((this.ttlSec * 1000) / 4);
    this.timers = opts.timers ?? realTimers;
  }

  /** Grants a fresh lease and starts renewing it; resolves with its id once the first deadline is known. */
  async start(): Promise<string> {
    const api = this.makeLease(this.ttlSec);
    const sent = this.timers.nowMs();
    // the grant is the first acknowledged "keepalive": the lease runs TTL from its arrival
    this.id = await api.grant();
    this.api = api;
    this.stopped = false;
    this.acked(sent);
    this.schedule();
    return this.id;
  }

  get leaseId(): string | null {
    return this.id;
  }

  /** The latest deadline handed out, in CLOCK_MONOTONIC ms, or null before the first grant. */
  get deadlineMs(): number | null {
    return this.lastAckedSendMs === null ? null : this.deadlineFrom(this.lastAckedSendMs);
  }

  /** Stops renewing; with `revoke`, also ends the lease at etcd at once (a clean leave). */
  async stop(revoke = false): Promise<void> {
    this.stopped = true;
    this.cancel?.();
    this.cancel = null;
    if (revoke && this.api) await this.api.revoke().catch(() => undefined);
  }

  private deadlineFrom(sendMs: number): number {
    return sendMs + this.ttlSec * 1000 - this.marginMs;
  }

  private acked(sendMs: number): void {
    // acks can arrive out of order after a stall: only a later send moves the deadline
    if (this.lastAckedSendMs !== null && sendMs <= this.lastAckedSendMs) return;
    this.lastAckedSendMs = sendMs;
    this.opts.onDeadline(this.deadlineFrom(sendMs));
  }

  private schedule(): void {
    if (this.stopped) return;
    this.cancel = this.timers.after(this.intervalMs, () => void this.renew());
  }

  private lost(why: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.cancel?.();
    this.opts.onLost?.(why);
  }

  private async renew(): Promise<void> {
    const api = this.api;
    if (this.stopped || !api) return;
    // the next send does not wait for this answer: one lost on a dead connection must not stall renewal
    this.schedule();
    if (this.inFlight >= MAX_IN_FLIGHT) return;
    this.inFlight++;
    const sent = this.timers.nowMs();
    let cancelTimeout = () => {};
    try {
      // an answer that never comes (a frozen etcd, a dead TCP link) must free its slot
      const timeout = new Promise<never>((_, reject) => {
        cancelTimeout = this.timers.after(this.ttlSec * 1000, () => reject(new Error('keepalive timed out')));
      });
      const ttl = await Promise.race([api.keepalive(), timeout]);
      if (api !== this.api) return; // an answer for a lease we replaced
      if (ttl <= 0) return this.lost('etcd answered the keepalive with TTL 0: the lease expired');
      this.acked(sent);
    } catch (err) {
      // unreachable or slow etcd: keep trying; the deadline stays where the last ack put it
      const msg = (err as Error).message;
      if (/not found|requested lease/i.test(msg)) this.lost(`the lease is gone at etcd: ${msg}`);
    } finally {
      cancelTimeout();
      this.inFlight--;
    }
  }
}
