import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { Clock } from '../../common/clock.js';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { MirrorConfig } from '../../config/schema.js';
import type { Storage, StorageClaim } from '../store/storage.js';
import { warmKeep } from '../warm/targets.js';
import type { AccessTracker } from './access-tracker.js';
import { CacheMetrics } from './cache-metrics.js';
import { Collector, type PassResult } from './collector.js';
import { compileRetention } from './retention.js';

/** A mirror refreshes its claim on the storage this often (a holder on another host that stops is seen as gone). */
const CLAIM_HEARTBEAT_MS = 30_000;

export interface CacheManagerDeps {
  storage: Storage;
  /** Access times, fed by the local stores. */
  tracker: AccessTracker;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  inflight: { isFetching(digest: string): boolean; isWriting(writeId: string): boolean };
  /** Told what a pass removed (access-index keys), so in-memory copies can be dropped too. */
  onRemoved?: (keys: string[]) => void;
  /** The storage is claimed by the process that forked this one (a worker): no claim of its own. */
  claimed?: boolean;
}

/** Free space is checked at most this often as content arrives. */
const FREE_SPACE_CHECK_MS = 1000;

/**
 * The cache lifecycle inside the mirror: access tracking, a pass on a schedule, and a pass as soon as new
 * content takes the cache over its high-water mark (or the disk under its free-space floor). One pass
 * runs at a time; triggers during a pass are folded into one more pass after it.
 */
export class CacheManager {
  readonly tracker: AccessTracker;
  readonly metrics: CacheMetrics;
  readonly collector: Collector;
  private claim: StorageClaim | undefined;
  private timers: NodeJS.Timeout[] = [];
  private queue: Promise<void> = Promise.resolve();
  private running = false;
  private again: string | undefined;
  /** Content bytes: measured by the last pass, plus what was stored since. */
  private estimate: number | undefined;
  private storedBytes = 0;
  private lastFreeCheck = 0;
  private stopped = false;

  constructor(
    private readonly config: MirrorConfig,
    private readonly deps: CacheManagerDeps,
  ) {
    this.tracker = deps.tracker;
    this.metrics = new CacheMetrics(deps.registry);
    if (config.storage.maxSize !== undefined) this.metrics.maxSizeBytes.set(config.storage.maxSize);
    const c = config.cache;
    this.collector = new Collector(
      {
        maxSize: config.storage.maxSize,
        minFreeSpace: config.storage.minFreeSpace,
        highWater: c.highWater,
        lowWater: c.lowWater,
        unreferencedGrace: c.unreferencedGrace,
        staleTempAge: c.staleTempAge,
        policies: compileRetention(config.retention),
        keep: warmKeep(config.warm.images),
      },
      {
        storage: deps.storage,
        holder: randomBytes(6).toString('hex'),
        clock: deps.clock,
        logger: deps.logger,
        access: this.tracker,
        metrics: this.metrics,
        inflight: deps.inflight,
        onRemoved: deps.onRemoved,
      },
    );
    this.tracker.onStored((_kind, size) => this.noteStored(size));
  }

  /** Claims the storage, loads the access times, starts the schedule and a first pass in the background. */
  async start(): Promise<void> {
    if (!this.deps.claimed) this.claim = await this.deps.storage.claim('mirror');
    await this.tracker.load();
    this.tracker.startFlushing(this.config.cache.accessFlushInterval);
    const heartbeat = setInterval(() => void this.claim?.heartbeat(), CLAIM_HEARTBEAT_MS);
    heartbeat.unref();
    this.timers.push(heartbeat);
    const interval = this.config.cache.gcInterval;
    if (interval > 0) {
      const t = setInterval(() => this.trigger('schedule'), interval);
      t.unref();
      this.timers.push(t);
    }
    this.trigger('startup');
  }

  /** Runs a pass now (after the one running, if any) and returns its result. */
  runPass(opts: { dryRun?: boolean; trigger?: string } = {}): Promise<PassResult> {
    const p = this.queue.then(() => this.pass(opts));
    this.queue = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  private async pass(opts: { dryRun?: boolean; trigger?: string }): Promise<PassResult> {
    this.running = true;
    const countedFrom = this.storedBytes;
    try {
      const result = await this.collector.run(opts);
      if (!result.dryRun) {
        this.estimate = result.sizeAfter + (this.storedBytes - countedFrom);
        this.metrics.sizeBytes.set(this.estimate);
      }
      return result;
    } finally {
      this.running = false;
      const next = this.again;
      this.again = undefined;
      if (next && !this.stopped && this.overLimit()) this.trigger(next);
    }
  }

  /** Starts a pass in the background; while one runs, asks for one more after it (if still needed). */
  trigger(reason: string): void {
    if (this.stopped) return;
    if (this.running) {
      this.again ??= reason;
      return;
    }
    this.runPass({ trigger: reason }).catch((err: unknown) => {
      // Another process on the same storage is running one: it does the work.
      if (err instanceof MirrorgateError && err.code === 'STORAGE_LOCKED') this.deps.logger.debug({ trigger: reason }, err.message);
      else this.deps.logger.error({ err: (err as Error).message, trigger: reason }, 'cache pass failed');
    });
  }

  /** The cache's size as far as the mirror knows (undefined before the first pass). */
  get sizeEstimate(): number | undefined {
    return this.estimate;
  }

  private overLimit(): boolean {
    const max = this.config.storage.maxSize;
    return max !== undefined && this.estimate !== undefined && this.estimate > max * this.config.cache.highWater;
  }

  private noteStored(size: number): void {
    this.storedBytes += size;
    if (this.estimate !== undefined) {
      this.estimate += size;
      this.metrics.sizeBytes.set(this.estimate);
    }
    if (this.overLimit()) this.trigger('size');
    const floor = this.config.storage.minFreeSpace;
    const now = this.deps.clock.now();
    if (floor !== undefined && now - this.lastFreeCheck >= FREE_SPACE_CHECK_MS) {
      this.lastFreeCheck = now;
      this.deps.storage.freeSpace().then(
        (free) => {
          if (free !== undefined && free < floor) this.trigger('free_space');
        },
        () => undefined,
      );
    }
  }

  /** Stops the schedule, waits for a running pass, saves the access times, releases the claim. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.queue;
    await this.tracker.stop().catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'could not save the access times'));
    await this.claim?.release();
  }
}
