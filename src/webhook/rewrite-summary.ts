import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';

/**
 * The info-level account of rewrites: one line per interval (`pods rewritten`, with the counts since the last one)
 * instead of a line per pod, which cost about a tenth of a review's CPU. Each pod keeps its original images in its
 * annotation, and the line per pod is still there at debug.
 */
export class RewriteSummary {
  private pods = 0;
  private images = 0;
  private dryRuns = 0;
  private since: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: { logger: Logger; clock: Clock; intervalMs: number }) {
    this.since = deps.clock.now();
  }

  /** Counts one rewritten pod. */
  add(images: number, dryRun: boolean): void {
    this.pods++;
    this.images += images;
    if (dryRun) this.dryRuns++;
  }

  start(): void {
    this.timer ??= setInterval(() => this.flush(), this.deps.intervalMs).unref();
  }

  /** Writes the line when there is something to count; `seconds` is the time since the previous line. */
  flush(): void {
    if (this.pods === 0) return;
    const now = this.deps.clock.now();
    this.deps.logger.info({ pods: this.pods, images: this.images, dryRuns: this.dryRuns, seconds: Math.round((now - this.since) / 1000) }, 'pods rewritten');
    this.pods = this.images = this.dryRuns = 0;
    this.since = now;
  }

  /** Stops the timer and writes what is left. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
  }
}
