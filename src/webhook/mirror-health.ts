import { request, type Dispatcher } from 'undici';
import type { Logger } from '../common/logger.js';
import type { WebhookMetrics } from './metrics.js';

/**
 * Background probe of the mirror's `/v2/`. The admission path only reads the last result: no network call while
 * the API server waits. Any HTTP answer below 500 (200, or 401 from an authenticating mirror) means it is up.
 */
export interface MirrorHealthOptions {
  url: string;
  intervalMs: number;
  timeoutMs: number;
  logger: Logger;
  metrics: WebhookMetrics;
  dispatcher?: Dispatcher;
}

export class MirrorHealth {
  /** Undefined until the first probe answers. */
  private up: boolean | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: MirrorHealthOptions) {}

  reachable(): boolean {
    return this.up === true;
  }

  /** Probes once and resolves, then keeps probing in the background. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.probe();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.probe().finally(() => this.schedule());
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  async probe(): Promise<boolean> {
    let ok = false;
    let detail: string | undefined;
    try {
      const res = await request(this.opts.url, {
        method: 'GET',
        signal: AbortSignal.timeout(this.opts.timeoutMs),
        ...(this.opts.dispatcher ? { dispatcher: this.opts.dispatcher } : {}),
      });
      await res.body.dump();
      ok = res.statusCode < 500;
      if (!ok) detail = `HTTP ${res.statusCode}`;
    } catch (err) {
      detail = err instanceof Error ? err.message : String(err);
    }
    if (ok !== this.up) {
      if (ok) this.opts.logger.info({ url: this.opts.url }, 'mirror reachable');
      else this.opts.logger.warn({ url: this.opts.url, detail }, 'mirror unreachable');
    }
    this.up = ok;
    this.opts.metrics.mirrorReachable.set(ok ? 1 : 0);
    return ok;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
