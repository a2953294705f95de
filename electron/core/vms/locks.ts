// Operations on one VM run one after another, so two simultaneous starts never yield two
// QEMUs; operations on different VMs run side by side.

export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs fn after every earlier operation on `key` has settled. */
  run<T>(key: string, fn: () => T | Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    return this.chain(key, prev.then(fn, fn));
  }

  /** Starts fn at once, synchronously, if no operation on `key` is pending; null otherwise. */
  runIfIdle<T>(key: string, fn: () => Promise<T>): Promise<T> | null {
    if (this.tails.has(key)) return null;
    let next: Promise<T>;
    try {
      next = fn();
    } catch (err) {
      next = Promise.reject(err as Error);
    }
    return this.chain(key, next);
  }

  private chain<T>(key: string, next: Promise<T>): Promise<T> {
    const settled = next.catch(() => undefined);
    this.tails.set(key, settled);
    void settled.then(() => {
      if (this.tails.get(key) === settled) this.tails.delete(key);
    });
    return next;
  }
}
