/**
 * Runs one operation per key at a time: callers that arrive while it runs share its result. The entry is
 * removed when the operation settles, so a failure is not remembered and the next caller tries again.
 */
export class Singleflight<T> {
  private readonly running = new Map<string, Promise<T>>();

  do(key: string, fn: () => Promise<T>): Promise<T> {
    let p = this.running.get(key);
    if (!p) {
      p = fn().finally(() => {
        if (this.running.get(key) === p) this.running.delete(key);
      });
      this.running.set(key, p);
    }
    return p;
  }

  get(key: string): Promise<T> | undefined {
    return this.running.get(key);
  }

  get size(): number {
    return this.running.size;
  }
}
