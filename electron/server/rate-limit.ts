// Failed logins, counted per user name and per peer address: a few mistakes are free, then
// each further failure locks that key out for longer (30 s, 60 s, … up to 15 min).
export interface RateLimitPolicy {
  /** Failures allowed before the first lockout. */
  free: number;
  firstLockMs: number;
  maxLockMs: number;
  /** A key with no failure for this long starts over. */
  forgetMs: number;
}

export const LOGIN_LIMITS: RateLimitPolicy = { free: 5, firstLockMs: 30_000, maxLockMs: 15 * 60_000, forgetMs: 60 * 60_000 };

export class RateLimiter {
  private keys = new Map<string, { failures: number; lastAt: number; lockedUntil: number }>();

  constructor(
    private readonly policy: RateLimitPolicy = LOGIN_LIMITS,
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
      const over = failures - this.policy.free;
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
