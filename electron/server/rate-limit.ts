// Failed logins, counted per key (a user name, a peer address): a few mistakes are free, then
// the key is locked out, for longer at each further failure (30 s, 60 s, … up to 15 min).
export interface RateLimitPolicy {
  /** Failures that lock the key out for the first time. */
  free: number;
  firstLockMs: number;
  maxLockMs: number;
  /** A key with no failure for this long starts over. */
  forgetMs: number;
}

/** Per user name: five wrong passwords, then a wait. */
export const USER_LIMITS: RateLimitPolicy = { free: 5, firstLockMs: 30_000, maxLockMs: 15 * 60_000, forgetMs: 60 * 60_000 };
/** Per address: more, as several people may share one (a NAT), but a guesser spraying names stops too. */
export const ADDRESS_LIMITS: RateLimitPolicy = { ...USER_LIMITS, free: 20 };

export class RateLimiter {
  private keys = new Map<string, { failures: number; lastAt: number; lockedUntil: number }>();

  constructor(
    private readonly policy: RateLimitPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds until any of these keys may try again; 0 when none is locked. */
  wait(keys: string[]): number {
    const now = this.now();
    return Math.max(0, ...keys.map((k) => (this.keys.get(k)?.lockedUntil ?? 0) - now));
  }

  failed(keys: string[]): void {
    const now = this.now();
    for (const k of keys) {
      const prev = this.keys.get(k);
      const failures = prev && now - prev.lastAt < this.policy.forgetMs ? prev.failures + 1 : 1;
      const over = failures - this.policy.free + 1;
      const lock = over > 0 ? Math.min(this.policy.firstLockMs * 2 ** (over - 1), this.policy.maxLockMs) : 0;
      this.keys.set(k, { failures, lastAt: now, lockedUntil: now + lock });
    }
    if (this.keys.size > 10_000) this.forgetOld(now);
  }

  succeeded(keys: string[]): void {
    keys.forEach((k) => this.keys.delete(k));
  }

  private forgetOld(now: number): void {
    for (const [k, v] of this.keys) if (now - v.lastAt >= this.policy.forgetMs && v.lockedUntil <= now) this.keys.delete(k);
  }
}
