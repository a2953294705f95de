// One host's part in HA: hold the lease (lease-keeper.ts), keep a key on it so the cluster sees
// the host alive, hand each new deadline and the HA QEMUs to guard to the fencer, and decide
// whether this host may start an HA VM: never after a fence until it holds a fresh lease, and
// never while it holds none.
import type { Etcd3 } from 'etcd3';
import { etcdLease, LeaseKeeper, type LeaseApi } from './lease-keeper';
import { ensureFencer, FencerLink, findFencer, readFenceRecord, type FencerOptions } from './fencer/client';
import { fencerFiles, type FenceRecord, type Guard } from './fencer/protocol';
import { monotonicMs } from './monotonic';

export interface HostLivenessOptions {
  hostId: string;
  /** The fencer's private dir (0700), e.g. the data dir's `ha/`. */
  fencerDir: string;
  /** The key that says this host is alive (the cluster layer's name for it). */
  aliveKey: string;
  ttlSec?: number;
  marginMs?: number;
  intervalMs?: number;
  fencer?: FencerOptions;
  /** What the alive key holds (default: the host id). */
  aliveValue?(): string;
  /** The HA QEMUs running here now, to guard. */
  guards(): Guard[];
  /** Runs with each fresh lease, before HA starts are allowed again (e.g. re-read who owns what). */
  onJoined?(): Promise<void>;
  /** Back with a fresh lease after a fence: tell the cluster when the fencer really acted (before the record goes). */
  onFenceReport?(rec: FenceRecord): Promise<void>;
  /** A fence whose lease survived (nobody took its guests): they are still ours to run. */
  onStallCleared?(rec: FenceRecord): void;
  /** Something worth an event: lease granted, lost, fenced. */
  onEvent?(what: string): void;
}

export class HostLiveness {
  private keeper: LeaseKeeper;
  private readonly link: FencerLink;
  private lease: (LeaseApi & { lease: ReturnType<Etcd3['lease']> }) | null = null;
  private rejoining: Promise<void> | null = null;
  private closed = false;
  private holding = false;
  /** The deadline the fencer was last armed with, whichever keeper it came from. */
  private armedMs: number | null = null;

  constructor(
    private readonly etcd: Etcd3,
    private readonly opts: HostLivenessOptions,
  ) {
    this.link = new FencerLink(opts.fencerDir);
    this.keeper = this.makeKeeper();
  }

  private makeKeeper(): LeaseKeeper {
    // only the current keeper speaks: one left from a join that failed must neither arm the
    // fencer with its own lease's deadlines nor report that lease's loss as ours
    const k: LeaseKeeper = new LeaseKeeper((ttl) => (this.lease = etcdLease(this.etcd, ttl)), {
      ttlSec: this.opts.ttlSec,
      marginMs: this.opts.marginMs,
      intervalMs: this.opts.intervalMs,
      onDeadline: (deadlineMs) => {
        if (k !== this.keeper) return;
        this.armedMs = deadlineMs;
        this.link.arm(deadlineMs, this.opts.guards());
        // a keepalive acknowledged after a fence: etcd never expired this lease, so no host
        // was told to take our guests; HA starts may go on (a stall, not a loss). Only an ack
        // whose deadline is still ahead proves that: a late answer to a keepalive sent before
        // a freeze says nothing of whether the lease expired since.
        const rec = this.holding && deadlineMs > monotonicMs() ? readFenceRecord(this.opts.fencerDir) : null;
        if (rec) {
          this.link.clearFence();
          this.opts.onEvent?.('fence record cleared: the lease outlived the stall');
          this.opts.onStallCleared?.(rec);
        }
      },
      onLost: (why) => {
        if (k !== this.keeper) return;
        this.holding = false;
        this.opts.onEvent?.(`lease lost: ${why}`);
        this.rejoin();
      },
    });
    return k;
  }

  /** Starts (or finds) the fencer, then takes a lease. */
  async start(): Promise<void> {
    await ensureFencer(this.opts.fencerDir, this.opts.fencer);
    await this.join();
  }

  private async join(): Promise<void> {
    const id = await this.keeper.start();
    await this.lease!.lease.put(this.opts.aliveKey).value(this.opts.aliveValue?.() ?? this.opts.hostId);
    await this.opts.onJoined?.();
    // back in the cluster with a fresh lease: a past fence no longer holds HA starts back, once
    // reported (holding comes after, so that an ack meanwhile is not taken for a stall's end)
    const rec = readFenceRecord(this.opts.fencerDir);
    if (rec) {
      await this.opts.onFenceReport?.(rec).catch((err: Error) => this.opts.onEvent?.(`reporting the fence: ${err.message}`));
      this.link.clearFence();
      this.opts.onEvent?.('fence record cleared: fresh lease');
    }
    this.holding = true;
    this.opts.onEvent?.(`lease ${id} granted`);
  }

  /** Takes a fresh lease after losing one; retried until it works or the host closes. */
  private rejoin(): void {
    if (this.rejoining || this.closed) return;
    this.rejoining = (async () => {
      for (let attempt = 0; !this.closed; attempt++) {
        try {
          this.keeper = this.makeKeeper();
          await this.join();
          return;
        } catch (err) {
          // the lease this try may have got is ended, not left renewing beside the next one's
          // (not awaited: a revoke can hang as long as etcd is out of reach)
          void this.keeper.stop(true);
          this.opts.onEvent?.(`taking a fresh lease failed (${(err as Error).message}); trying again`);
          await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** attempt)));
        }
      }
    })().finally(() => (this.rejoining = null));
  }

  /** Starts the fencer again if it died, and hands it the current deadline and guards at once. */
  async superviseFencer(): Promise<void> {
    if (this.closed || findFencer(fencerFiles(this.opts.fencerDir))) return;
    await ensureFencer(this.opts.fencerDir, this.opts.fencer);
    this.opts.onEvent?.('the fencer was gone: started again');
    this.guardsChanged();
  }

  /**
   * Tell the fencer at once about a new or ended HA QEMU (the next deadline would too, later).
   * Also with the lease lost or the host fenced: a start under way then must not leave a QEMU
   * the fencer does not know (it kills one reported after its fence at once).
   */
  guardsChanged(): void {
    if (this.armedMs !== null && !this.closed) this.link.arm(this.armedMs, this.opts.guards());
  }

  get fence(): FenceRecord | null {
    return readFenceRecord(this.opts.fencerDir);
  }

  /** Why this host may not start an HA VM now, or null when it may. */
  haStartBlocker(): string | null {
    const rec = this.fence;
    if (rec)
      return `this host fenced its HA guests at ${new Date(rec.at).toISOString()} and has not rejoined the cluster with a fresh lease yet`;
    if (!this.holding) return 'this host holds no live lease in the cluster';
    return null;
  }

  /** Leaves: with `revoke` (a clean leave) the lease ends and the fencer is disarmed. */
  async close(revoke = false): Promise<void> {
    this.closed = true;
    await this.keeper.stop(revoke);
    if (revoke) {
      this.armedMs = null;
      this.link.disarm();
    }
    this.link.close();
  }
}
