import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import type { MirrorWarmConfig } from '../../config/schema.js';
import type { MirrorMetrics } from '../metrics.js';
import type { Repository } from '../repository/repository.js';
import type { RepositoryRef } from '../store/types.js';
import { fetchImage } from './fetch-image.js';
import { RepositorySource, type CacheProbe } from './repository-source.js';
import { warmTargets, type WarmTarget } from './targets.js';

export const WARM_STATES = ['pending', 'warming', 'warm', 'failed'] as const;
export type WarmState = (typeof WARM_STATES)[number];

/** One warm image as the status page and the metrics report it. */
export interface WarmImageStatus {
  image: string;
  /** `upstream/path`, the repository that holds it. */
  repository: string;
  reference: string;
  /** `pending` until its first fetch; `failed` keeps what the last success fetched. */
  state: WarmState;
  digest?: string;
  platforms?: string[];
  size?: number;
  /** Epoch ms of the last successful fetch. */
  warmedAt?: number;
  /** The last failure, until a fetch succeeds. */
  error?: { at: number; message: string };
}

export interface WarmStatus {
  refreshInterval: number;
  platforms: string[];
  images: WarmImageStatus[];
}

export interface WarmKeeperDeps {
  /** The repository a request for the image's repository goes to (the router). */
  resolve(repo: RepositoryRef): Repository;
  cache: CacheProbe;
  clock: Clock;
  logger: Logger;
  metrics: MirrorMetrics;
}

/**
 * Keeps the configured images in the cache: fetches each (manifests for the configured platforms and all
 * their blobs) through the caching stores when the mirror starts, and again every `refreshInterval`, so a
 * tag moved upstream is followed. The cache lifecycle never evicts them (`warmKeep`). Images are fetched
 * one at a time; a round that is still running when the next is due is not doubled.
 */
export class WarmKeeper {
  private readonly targets: WarmTarget[];
  private readonly images: WarmImageStatus[];
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private readonly stopping = new AbortController();

  constructor(
    private readonly config: MirrorWarmConfig,
    private readonly deps: WarmKeeperDeps,
  ) {
    this.targets = warmTargets(config.images);
    this.images = this.targets.map((t) => ({ image: t.image, repository: `${t.repo.upstream}/${t.repo.path}`, reference: t.reference, state: 'pending' }));
    this.report();
  }

  /** A first round now, then one every refresh interval. Does nothing without warm images. */
  start(): void {
    if (this.targets.length === 0 || this.timer) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.config.refreshInterval);
    this.timer.unref();
  }

  /** Fetches every warm image once; joins the round already running. */
  refresh(): Promise<void> {
    this.round ??= this.runRound().finally(() => {
      this.round = undefined;
    });
    return this.round;
  }

  status(): WarmStatus {
    return { refreshInterval: this.config.refreshInterval, platforms: [...this.config.platforms], images: this.images.map((i) => ({ ...i })) };
  }

  /** No more rounds, and no new request in the running one; resolves when the requests in progress are done. */
  stop(): Promise<void> {
    this.stopping.abort();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return this.round ?? Promise.resolve();
  }

  private async runRound(): Promise<void> {
    for (const [i, target] of this.targets.entries()) {
      if (this.stopping.signal.aborted) return;
      await this.warm(target, this.images[i]!);
    }
  }

  private async warm(target: WarmTarget, status: WarmImageStatus): Promise<void> {
    const previous = status.digest;
    status.state = 'warming';
    this.report();
    try {
      const source = new RepositorySource(this.deps.resolve(target.repo), this.deps.cache);
      const image = await fetchImage(source, target.reference, this.config.platforms, this.stopping.signal);
      Object.assign(status, { state: 'warm', digest: image.digest, platforms: image.platforms, size: image.size, warmedAt: this.deps.clock.now() });
      delete status.error;
      this.deps.logger[previous === image.digest ? 'debug' : 'info'](
        { image: target.image, digest: image.digest, previous, platforms: image.platforms, blobs: image.blobs, size: image.size },
        previous === undefined ? 'warm image fetched' : previous === image.digest ? 'warm image unchanged' : 'warm image moved upstream; fetched again',
      );
    } catch (err) {
      if (this.stopping.signal.aborted) return; // stopped midway: not a failure of the image
      status.state = 'failed';
      status.error = { at: this.deps.clock.now(), message: (err as Error).message };
      this.deps.logger.warn({ image: target.image, err: (err as Error).message }, 'could not fetch a warm image');
    }
    this.report();
  }

  private report(): void {
    for (const state of WARM_STATES) this.deps.metrics.warmImages.set({ state }, this.images.filter((i) => i.state === state).length);
  }
}
