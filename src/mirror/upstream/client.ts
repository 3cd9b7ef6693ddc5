import type { Dispatcher } from 'undici';
import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import type { UpstreamConfig } from '../../config/schema.js';
import type { Semaphore } from '../limits/semaphore.js';
import type { MirrorMetrics } from '../metrics.js';
import { UpstreamHealth } from './health.js';
import { discard, header, type UpstreamRequest, type UpstreamResponse } from './messages.js';
import { TokenAuth } from './token-auth.js';
import { UpstreamTransport, withRetries } from './transport.js';

// Callers take the request and response shapes and their helpers from here.
export { contentLength, discard, header, release, type UpstreamKind, type UpstreamRequest, type UpstreamResponse } from './messages.js';

export interface UpstreamClientOptions {
  /** Upstream key (registry host), e.g. docker.io. */
  host: string;
  config: UpstreamConfig;
  logger: Logger;
  clock: Clock;
  metrics?: MirrorMetrics;
  env?: NodeJS.ProcessEnv;
  /** For tests: a dispatcher to use instead of the upstream's own pool. */
  dispatcher?: Dispatcher;
  /** Caps simultaneous fetches across all upstreams; a slot is held until the response body is done. */
  fetchGate?: Semaphore;
}

/** The leading integer of a rate-limit header (`76;w=21600`), when there is one. */
function rateLimitValue(value: string | undefined): number | undefined {
  const m = value === undefined ? null : /^\s*(\d{1,12})\b/.exec(value);
  return m ? Number(m[1]) : undefined;
}

/**
 * Talks to one upstream registry: the transport (pool, timeouts, retries, redirects) and Docker's token
 * flow (`TokenAuth`), with the fetch gate, metrics and a log line per request around them.
 */
export class UpstreamClient {
  readonly host: string;
  readonly baseUrl: URL;
  /** Last success and failure, for the status page. */
  readonly health: UpstreamHealth;
  private readonly transport: UpstreamTransport;
  private readonly auth: TokenAuth;

  constructor(private readonly opts: UpstreamClientOptions) {
    this.host = opts.host;
    this.health = new UpstreamHealth(opts.clock);
    this.transport = new UpstreamTransport({ host: opts.host, config: opts.config, logger: opts.logger, ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}) });
    this.baseUrl = this.transport.baseUrl;
    this.auth = new TokenAuth({
      host: opts.host,
      config: opts.config,
      transport: this.transport,
      logger: opts.logger,
      clock: opts.clock,
      env: opts.env ?? process.env,
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
    });
  }

  /** How long a cached tag from this upstream is answered without asking it. */
  get freshness(): number {
    return this.opts.config.tagFreshness;
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  /**
   * Sends a request, authenticating as the upstream asks. Throws UPSTREAM_UNAVAILABLE for network
   * failures, timeouts and refused redirects; every HTTP status is returned to the caller (see `upstreamFailure`).
   */
  request(req: UpstreamRequest): Promise<UpstreamResponse> {
    return withRetries(() => this.attempt(req));
  }

  private async attempt(req: UpstreamRequest): Promise<UpstreamResponse> {
    const started = this.opts.clock.now();
    const scope = req.repository ? `repository:${req.repository}:pull` : undefined;
    let outcome = 'error';
    const releaseGate = this.opts.fetchGate ? await this.opts.fetchGate.acquire() : undefined;
    let gateHeld = releaseGate !== undefined;
    try {
      let res = await this.transport.send(req, await this.auth.preemptive(scope));
      if (res.status === 401) {
        const auth = await this.auth.answer(res, scope);
        if (auth) {
          await discard(res.body);
          res = await this.transport.send(req, auth);
        }
      }
      outcome = String(res.status);
      if (req.kind === 'manifest') this.observeRateLimit(res);
      if (releaseGate && req.method === 'GET') {
        gateHeld = false;
        res.body.once('close', releaseGate).once('end', releaseGate).once('error', releaseGate);
      }
      return res;
    } finally {
      if (gateHeld) releaseGate?.();
      this.health.observe(outcome);
      this.opts.metrics?.upstreamRequests.inc({ upstream: this.host, method: req.method, kind: req.kind, outcome });
      this.opts.logger.info(
        { upstream: this.host, method: req.method, path: req.path, kind: req.kind, outcome, ms: this.opts.clock.now() - started },
        'upstream request',
      );
    }
  }

  /** Docker Hub's pull quota, from the `ratelimit-limit` and `ratelimit-remaining` headers of manifest answers. */
  private observeRateLimit(res: UpstreamResponse): void {
    const remaining = rateLimitValue(header(res.headers, 'ratelimit-remaining'));
    const limit = rateLimitValue(header(res.headers, 'ratelimit-limit'));
    if (limit !== undefined) this.opts.metrics?.rateLimitLimit.set({ upstream: this.host }, limit);
    if (remaining !== undefined) {
      this.opts.metrics?.rateLimitRemaining.set({ upstream: this.host }, remaining);
      this.opts.logger.info({ upstream: this.host, ratelimitRemaining: remaining, ratelimitLimit: limit }, 'upstream rate limit');
    }
  }
}
