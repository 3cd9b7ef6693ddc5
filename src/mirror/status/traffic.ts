import type { Clock } from '../../common/clock.js';

const MINUTE = 60_000;

/**
 * Cache lookup results (`mirrorgate_cache_lookups_total`'s `result`) answered from the cache: a hit, a tag
 * confirmed by a HEAD (free on Docker Hub), a tag served stale while the upstream is down, a client that
 * followed a download another client started. The others (miss, changed, uncached) fetched upstream.
 */
const FROM_CACHE: ReadonlySet<string> = new Set(['hit', 'revalidated', 'stale', 'joined']);

/** Per-minute counts, oldest first; the last entry is the current (partial) minute. */
export interface TrafficSeries {
  /** Epoch ms of the first minute. */
  start: number;
  stepMs: number;
  /** Lookups answered from the cache. */
  cache: number[];
  /** Lookups that sent a request of their own upstream. */
  upstream: number[];
}

/**
 * Requests answered from the cache against those sent upstream, per minute over the last `minutes`: a
 * fixed ring of counters (a few KiB), fed by every cache lookup. In memory only: a restart starts it empty.
 */
export class TrafficHistory {
  private readonly stamps: Float64Array;
  private readonly cache: Uint32Array;
  private readonly upstream: Uint32Array;

  constructor(
    private readonly clock: Clock,
    readonly minutes = 360,
  ) {
    this.stamps = new Float64Array(minutes).fill(-1);
    this.cache = new Uint32Array(minutes);
    this.upstream = new Uint32Array(minutes);
  }

  record(result: string): void {
    const slot = this.slot(Math.floor(this.clock.now() / MINUTE));
    if (FROM_CACHE.has(result)) this.cache[slot]!++;
    else this.upstream[slot]!++;
  }

  series(): TrafficSeries {
    const now = Math.floor(this.clock.now() / MINUTE);
    const first = now - this.minutes + 1;
    const cache: number[] = [];
    const upstream: number[] = [];
    for (let m = first; m <= now; m++) {
      const slot = m % this.minutes;
      const current = this.stamps[slot] === m;
      cache.push(current ? this.cache[slot]! : 0);
      upstream.push(current ? this.upstream[slot]! : 0);
    }
    return { start: first * MINUTE, stepMs: MINUTE, cache, upstream };
  }

  /** The ring slot of a minute, emptied when it last held an older minute. */
  private slot(minute: number): number {
    const slot = minute % this.minutes;
    if (this.stamps[slot] !== minute) {
      this.stamps[slot] = minute;
      this.cache[slot] = 0;
      this.upstream[slot] = 0;
    }
    return slot;
  }
}
