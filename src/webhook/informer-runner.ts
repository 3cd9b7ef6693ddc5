import type { Informer, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../common/logger.js';

/**
 * Keeps an informer running: client-node's ListWatch stops for good after an error, so it is restarted with
 * exponential backoff (capped), reset once it has run without error for a while.
 */
export interface RunnerOptions {
  name: string;
  logger: Logger;
  initialDelayMs?: number;
  maxDelayMs?: number;
}

export class InformerRunner<T extends KubernetesObject> {
  private attempts = 0;
  private lastError = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private starting: Promise<void> | undefined;
  /** Restarts so far, for tests and logs. */
  restarts = 0;

  constructor(
    private readonly informer: Informer<T>,
    private readonly opts: RunnerOptions,
  ) {
    informer.on('error', (err: unknown) => this.onError(err));
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.track(this.informer.start());
  }

  private track(p: Promise<void>): Promise<void> {
    const tracked = p.finally(() => {
      if (this.starting === tracked) this.starting = undefined;
    });
    this.starting = tracked;
    return tracked;
  }

  private onError(err: unknown): void {
    if (this.stopped) return;
    const now = Date.now();
    const max = this.opts.maxDelayMs ?? 30_000;
    if (now - this.lastError > 2 * max) this.attempts = 0;
    this.lastError = now;
    const delay = Math.min(max, (this.opts.initialDelayMs ?? 500) * 2 ** this.attempts);
    this.attempts++;
    this.opts.logger.warn({ informer: this.opts.name, err: (err as Error)?.message ?? String(err), retryInMs: delay }, 'informer failed; restarting');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      this.restarts++;
      void this.track(this.informer.start()).catch((e: unknown) => this.onError(e));
    }, delay);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.informer.stop();
    // ListWatch checks its stopped flag only before listing: a start in flight still opens a watch. Stop it again after.
    if (this.starting) {
      await this.starting.catch(() => undefined);
      await this.informer.stop();
    }
  }
}
