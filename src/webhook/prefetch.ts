import { Agent, request } from 'undici';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { WebhookConfig } from '../config/schema.js';
import { basicAuthHeader } from '../mirror/upstream/credentials.js';
import type { WebhookMetrics } from './metrics.js';
import type { ImageDecision } from './pod-mutation.js';

/** What became of a notice; bounded, labels `mirrorgate_webhook_prefetch_total`. */
export const PREFETCH_RESULTS = ['accepted', 'refused', 'failed', 'dropped'] as const;
export type PrefetchResult = (typeof PREFETCH_RESULTS)[number];

/** The mirror's limit per request (src/mirror/prefetch/prefetch-request.ts). */
const MAX_IMAGES = 64;

/**
 * The images a rewrite sends the kubelet to the mirror for, as the mirror names them (the rewritten reference
 * without `<mirrorHost>/`), each once.
 */
export function prefetchImages(decisions: readonly ImageDecision[], mirrorHost: string): string[] {
  const prefix = `${mirrorHost}/`;
  const out = new Set<string>();
  for (const d of decisions) if (d.changed && d.output.startsWith(prefix)) out.add(d.output.slice(prefix.length));
  return [...out].slice(0, MAX_IMAGES);
}

/** The prefetch endpoint on the mirror the probe reaches (in a cluster, usually its Service). */
export function defaultPrefetchUrl(probeUrl: string): string {
  return new URL('/v2/_mirrorgate/prefetch', probeUrl).toString();
}

/**
 * The `Authorization` header for the configured mirror user, read again at most every `ttlMs` (a rotated password
 * file is picked up) and never on the admission path. Throws when a secret cannot be read.
 */
export function cachedAuthorization(credentials: WebhookConfig['prefetch']['credentials'], env: NodeJS.ProcessEnv, clock: Clock, ttlMs = 30_000): () => string | undefined {
  let value: string | undefined;
  let readAt = -Infinity;
  return () => {
    if (clock.now() - readAt >= ttlMs) {
      value = basicAuthHeader(credentials, env);
      readAt = clock.now();
    }
    return value;
  };
}

export interface PrefetchNotifierOptions {
  /** The mirror's `POST /v2/_mirrorgate/prefetch`. */
  url: string;
  timeoutMs: number;
  maxInFlight: number;
  /** The mirror user's `Authorization`; undefined for a mirror without authentication. */
  authorization?: (() => string | undefined) | undefined;
  logger: Logger;
  metrics: WebhookMetrics;
}

/**
 * Tells the mirror which images an admitted pod will pull. `notify` returns at once and never throws: the notice
 * is sent after the current tick (the review's answer is written first), and nobody waits for it. At most
 * `maxInFlight` notices are under way; past that a notice is dropped, so a flood of admissions cannot pile up
 * requests or memory. Every outcome is counted; failures are logged at debug, since they cost only a colder pull.
 */
export class PrefetchNotifier {
  private inFlight = 0;
  private closed = false;
  private readonly agent: Agent;

  constructor(private readonly opts: PrefetchNotifierOptions) {
    this.agent = new Agent({ connections: opts.maxInFlight, keepAliveTimeout: 30_000 });
  }

  notify(images: readonly string[]): void {
    if (images.length === 0 || this.closed) return;
    if (this.inFlight >= this.opts.maxInFlight) {
      this.count('dropped');
      return;
    }
    this.inFlight++;
    setImmediate(() => {
      void this.send(images).finally(() => {
        this.inFlight--;
      });
    });
  }

  /** Notices under way. */
  get pending(): number {
    return this.inFlight;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.agent.destroy();
  }

  private async send(images: readonly string[]): Promise<void> {
    let result: PrefetchResult;
    try {
      const authorization = this.opts.authorization?.();
      const res = await request(this.opts.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: JSON.stringify({ images }),
        signal: AbortSignal.timeout(this.opts.timeoutMs),
        dispatcher: this.agent,
      });
      const text = await res.body.text();
      result = res.statusCode === 202 ? 'accepted' : 'refused';
      if (result === 'refused') this.opts.logger.debug({ url: this.opts.url, status: res.statusCode, body: text.slice(0, 300), images }, 'the mirror refused a prefetch');
    } catch (err) {
      result = 'failed';
      this.opts.logger.debug({ url: this.opts.url, err: (err as Error).message, images }, 'could not send a prefetch to the mirror');
    }
    this.count(result);
  }

  private count(result: PrefetchResult): void {
    this.opts.metrics.prefetch.inc({ result });
  }
}
