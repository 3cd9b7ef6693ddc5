import type { Clock } from '../../common/clock.js';

export interface TokenBucketsOptions {
  /** Tokens a key holds when full (and starts with). */
  capacity: number;
  /** How long an empty bucket takes to fill up again (it refills evenly over this time). */
  refillMs: number;
  /** Most keys tracked; beyond it the key that took a token longest ago is forgotten (its bucket is the fullest). */
  maxKeys: number;
  clock: Clock;
}

interface Bucket {
  tokens: number;
  at: number;
  /** Set once a caller was told to wait, cleared by the next take: lets the first refusal be logged, not every one. */
  refused: boolean;
}

/**
 * One token bucket per key, in memory, bounded in keys so that a flood of new keys costs a fixed amount of
 * memory. A full bucket is the same as no entry, so only keys that took tokens recently are stored, in the
 * order they last took one (a Map keeps insertion order: delete and set moves a key to the end).
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly opts: TokenBucketsOptions) {}

  get size(): number {
    return this.buckets.size;
  }

  private level(b: Bucket | undefined, now: number): number {
    if (!b) return this.opts.capacity;
    return Math.min(this.opts.capacity, b.tokens + ((now - b.at) * this.opts.capacity) / this.opts.refillMs);
  }

  /** Milliseconds until `key` holds a whole token; 0 when it holds one now. */
  waitMs(key: string): number {
    const level = this.level(this.buckets.get(key), this.opts.clock.now());
    return level >= 1 ? 0 : Math.ceil(((1 - level) * this.opts.refillMs) / this.opts.capacity);
  }

  /** Takes one token (call when `waitMs` is 0; the level never goes below 0). */
  take(key: string): void {
    const now = this.opts.clock.now();
    const tokens = Math.max(0, this.level(this.buckets.get(key), now) - 1);
    this.buckets.delete(key);
    this.buckets.set(key, { tokens, at: now, refused: false });
    for (const oldest of this.buckets.keys()) {
      if (this.buckets.size <= this.opts.maxKeys) break;
      this.buckets.delete(oldest);
    }
  }

  /** Gives one token back (a reservation that turned out not to count). */
  give(key: string): void {
    const b = this.buckets.get(key);
    if (!b) return;
    const now = this.opts.clock.now();
    const tokens = this.level(b, now) + 1;
    if (tokens >= this.opts.capacity) this.buckets.delete(key);
    else Object.assign(b, { tokens, at: now });
  }

  /** Records that `key` was refused; true the first time since its last take. */
  refuse(key: string): boolean {
    const b = this.buckets.get(key);
    if (!b || b.refused) return false;
    b.refused = true;
    return true;
  }
}
