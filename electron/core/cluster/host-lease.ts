// The lease a host publishes its liveness and inventory under (TTL 10 s). A lost lease is
// replaced, after a pause that doubles while the new ones keep failing: a host cut off from
// etcd has its grants refused at once (the client's circuit breaker), and replacing them
// without a pause spun a whole core, starving its fencer and the guests until the link came back.
import type { Etcd3, Lease } from 'etcd3';

/** Seconds the lease lives without renewal: the host's VMs are then marked not reporting. */
export const LEASE_TTL = 10;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;

export class HostLease {
  private lease: Lease;
  private retryMs = 0;
  private retry: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly etcd: Etcd3,
    /** Puts everything under a new lease again; resolves once it took. */
    private readonly republish: () => Promise<void>,
    private readonly log: (line: string) => void,
  ) {
    this.lease = this.grant();
  }

  current(): Lease {
    return this.lease;
  }

  async revoke(): Promise<void> {
    await this.lease.revoke().catch(() => undefined);
  }

  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.lease.release();
  }

  private grant(): Lease {
    const lease = this.etcd.lease(LEASE_TTL, { autoKeepAlive: true });
    lease.on('lost', (err) => {
      if (this.closed || lease !== this.lease || this.retry) return;
      this.retryMs = Math.min(RETRY_MAX_MS, Math.max(RETRY_MIN_MS, this.retryMs * 2));
      // once per lease lost, at most one line per RETRY_MAX_MS while etcd stays out of reach
      this.log(`cluster: lease lost (${err.message}); publishing again with a new one in ${this.retryMs} ms`);
      this.retry = setTimeout(() => {
        this.retry = null;
        if (this.closed) return;
        this.lease = this.grant();
        void this.republish().catch((e: Error) => this.log(`cluster: ${e.message}`));
      }, this.retryMs);
      this.retry.unref();
    });
    // granted: the next loss starts again from the shortest pause
    lease.grant().then(
      () => lease === this.lease && (this.retryMs = 0),
      () => undefined,
    );
    return lease;
  }
}
