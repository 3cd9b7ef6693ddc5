import { MirrorgateError } from '../../common/errors.js';

export interface SemaphoreOptions {
  /** Holders at once. */
  max: number;
  /** Waiters at once; one more is refused at once. */
  maxQueued: number;
  /** Longest wait before the waiter is refused. */
  queueTimeoutMs: number;
  /** What the refusal says, e.g. "too many upstream fetches in progress". */
  what: string;
}

/**
 * A counting semaphore with a bounded, time-limited queue. When it cannot admit a caller it throws
 * TOOMANYREQUESTS (429 with Retry-After), so overload turns into a clean answer clients retry, not into
 * unbounded memory or an endless wait.
 */
export class Semaphore {
  private held = 0;
  private readonly waiters: Array<{ grant: () => void }> = [];

  constructor(private readonly opts: SemaphoreOptions) {}

  get inUse(): number {
    return this.held;
  }

  get queued(): number {
    return this.waiters.length;
  }

  /** Resolves with a release function (idempotent) once a slot is free. */
  async acquire(): Promise<() => void> {
    if (this.held < this.opts.max) {
      this.held++;
      return this.releaser();
    }
    if (this.waiters.length >= this.opts.maxQueued) throw this.refusal();
    return new Promise<() => void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          clearTimeout(timer);
          resolve(this.releaser());
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(this.refusal());
      }, this.opts.queueTimeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Runs `fn` holding a slot. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      // The slot passes straight to the next waiter: `held` stays the same.
      if (next) next.grant();
      else this.held--;
    };
  }

  private refusal(): MirrorgateError {
    return new MirrorgateError('TOOMANYREQUESTS', `${this.opts.what}; retry shortly`, { headers: { 'retry-after': '1' } });
  }
}
