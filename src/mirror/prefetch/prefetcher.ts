import type { Logger } from '../../common/logger.js';
import type { MirrorMetrics } from '../metrics.js';
import type { RepositoryRef } from '../store/types.js';
import type { FetchedImage } from '../warm/fetch-image.js';

/** One image to fetch: the repository that holds it in the cache, and the tag or digest the pull will ask for. */
export interface PrefetchTarget {
  repo: RepositoryRef;
  reference: string;
}

/** What became of an image asked for: queued, merged with the same image queued or being fetched, or dropped (queue full). */
export type SubmitState = 'queued' | 'merged' | 'dropped';

export interface PrefetcherDeps {
  /** Fetches the image through the caching stores; asks for nothing more once `signal` is aborted. */
  fetch(target: PrefetchTarget, signal: AbortSignal): Promise<FetchedImage>;
  logger: Logger;
  metrics: MirrorMetrics;
}

export interface PrefetcherOptions {
  /** Most images waiting for a fetch (those being fetched not counted). */
  queue: number;
  /** Images fetched at once. */
  concurrency: number;
}

const keyOf = (t: PrefetchTarget): string => `${t.repo.upstream}/${t.repo.path}@${t.reference}`;

/**
 * The prefetch queue: images asked for ahead of a pull, fetched a few at a time in the order they came. An image
 * already queued or being fetched is merged, not fetched twice; past the queue's bound it is dropped, never waited
 * for: the pull it was meant to speed up still works, only colder. What each fetch downloads is shared with any pull
 * of the same blobs (the caching blob store runs one download per digest).
 */
export class Prefetcher {
  private readonly waiting: PrefetchTarget[] = [];
  /** Keys of the images waiting or being fetched. */
  private readonly known = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly options: PrefetcherOptions,
    private readonly deps: PrefetcherDeps,
  ) {
    this.report();
  }

  /** Takes an image; returns at once, the fetch runs in the background. */
  submit(target: PrefetchTarget): SubmitState {
    const key = keyOf(target);
    let state: SubmitState;
    if (this.known.has(key)) state = 'merged';
    else if (this.stopping.signal.aborted || (this.running.size >= this.options.concurrency && this.waiting.length >= this.options.queue)) state = 'dropped';
    else {
      this.known.add(key);
      this.waiting.push(target);
      state = 'queued';
      this.pump();
    }
    this.deps.metrics.prefetchImages.inc({ state });
    this.report();
    return state;
  }

  /** Images waiting or being fetched. */
  get pending(): number {
    return this.waiting.length + this.running.size;
  }

  /** Drops what waits and asks for nothing more; resolves when the fetches in progress have finished. */
  async stop(): Promise<void> {
    this.stopping.abort();
    for (const t of this.waiting.splice(0)) this.known.delete(keyOf(t));
    this.report();
    await Promise.allSettled([...this.running]);
  }

  private pump(): void {
    while (this.running.size < this.options.concurrency && !this.stopping.signal.aborted) {
      const target = this.waiting.shift();
      if (!target) return;
      const run: Promise<void> = this.run(target).finally(() => {
        this.known.delete(keyOf(target));
        this.running.delete(run);
        this.report();
        this.pump();
      });
      this.running.add(run);
    }
  }

  private async run(target: PrefetchTarget): Promise<void> {
    const started = performance.now();
    const image = keyOf(target);
    try {
      const fetched = await this.deps.fetch(target, this.stopping.signal);
      this.deps.metrics.prefetchImages.inc({ state: 'fetched' });
      this.deps.logger.debug({ image, digest: fetched.digest, platforms: fetched.platforms, blobs: fetched.blobs, size: fetched.size, ms: Math.round(performance.now() - started) }, 'prefetched an image');
    } catch (err) {
      if (this.stopping.signal.aborted) return; // stopped midway: not a failure of the image
      this.deps.metrics.prefetchImages.inc({ state: 'failed' });
      // A warning, not an error: the kubelet's own pull goes on and reports what is wrong.
      this.deps.logger.warn({ image, err: (err as Error).message }, 'could not prefetch an image');
    }
  }

  private report(): void {
    this.deps.metrics.prefetchPending.set(this.pending);
  }
}
