import type { Clock } from '../../common/clock.js';

/** Errors that mean the disk (or the quota) is full. */
export function isStorageFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * Remembers that the cache's disk was full. While it is, cold content is streamed straight from the
 * upstream without caching; after `retryAfterMs` caching is tried again, so the mirror recovers by itself
 * when space returns.
 */
export class StorageFullState {
  private fullUntil = 0;

  constructor(private readonly clock: Clock, private readonly retryAfterMs = 30_000) {}

  markFull(): void {
    this.fullUntil = this.clock.now() + this.retryAfterMs;
  }

  get isFull(): boolean {
    return this.clock.now() < this.fullUntil;
  }
}
