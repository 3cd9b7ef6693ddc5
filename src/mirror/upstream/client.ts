import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import type { Clock } from '../../common/clock.js';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { UpstreamConfig } from '../../config/schema.js';
import type { MirrorMetrics } from '../metrics.js';
import { parseChallenges, type Challenge } from './challenge.js';
import { basicAuthHeader } from './credentials.js';
import { TokenCache } from './token-cache.js';
import type { Semaphore } from '../limits/semaphore.js';

export type UpstreamKind = 'manifest' | 'blob' | 'tags' | 'referrers' | 'token' | 'base';

export interface UpstreamRequest {
  method: 'GET' | 'HEAD';
  /** Path below the upstream's URL, starting with `/v2/`. */
  path: string;
  /** Repository path, for the token scope. */
  repository?: string;
  kind: UpstreamKind;
  headers?: Record<string, string>;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Consume or destroy it. HEAD responses have an empty body. */
  body: Readable;
  /** URL that finally answered (after redirects). */
  url: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Answers worth one more try: the upstream (or its load balancer) had a passing problem. */
const RETRY_STATUSES = new Set([500, 502, 503, 504]);
/** Backoff before each retry; its length is how many retries there are. */
const RETRY_DELAYS_MS = [100, 400];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A connection that was dropped before an answer (reset, closed): worth one more try. Refused
 * connections and timeouts are not retried: the upstream is down or slow, and callers serving stale
 * content should not wait longer for it.
 */
function isDroppedConnection(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string } })?.cause;
  return cause?.code === 'UND_ERR_SOCKET' || cause?.code === 'ECONNRESET' || cause?.code === 'EPIPE';
}
const MAX_REDIRECTS = 5;
const TOKEN_MAX_BYTES = 64 * 1024;

export function header(headers: UpstreamResponse['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Drops a body we will not read (closing its connection); undici reports that as an error we expect. */
export function release(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** Drains a body we do not need so its connection goes back to the pool. */
export async function discard(body: Readable): Promise<void> {
  try {
    body.resume();
    await new Promise<void>((resolve) => {
      body.once('end', resolve).once('error', () => resolve()).once('close', resolve);
    });
  } catch {
    /* nothing to do: the connection is dropped */
  }
}

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

/**
 * Talks to one upstream registry: connection pool, per-phase timeouts, Docker's token flow (Bearer
 * challenges with per-scope token cache; Basic challenges), and redirects to blob CDNs without carrying
 * credentials to another host.
 */
export class UpstreamClient {
  readonly host: string;
  readonly baseUrl: URL;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly tokens: TokenCache;
  /** The last Bearer challenge seen, so later requests can fetch a token before being told to. */
  private bearer: { realm: string; service?: string } | undefined;
  private basic = false;

  constructor(private readonly opts: UpstreamClientOptions) {
    this.host = opts.host;
    this.baseUrl = new URL(opts.config.url);
    this.tokens = new TokenCache(opts.clock);
    this.ownsDispatcher = !opts.dispatcher;
    this.dispatcher =
      opts.dispatcher ??
      new Agent({
        connections: opts.config.maxConnections,
        connect: { timeout: opts.config.timeouts.connect },
        headersTimeout: opts.config.timeouts.headers,
        bodyTimeout: opts.config.timeouts.body,
        keepAliveTimeout: 10_000, // idle upstream connections are closed after this (undici default is 4 s)
      });
  }

  /** How long a cached tag from this upstream is answered without asking it. */
  get freshness(): number {
    return this.opts.config.tagFreshness;
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  /**
   * Sends a request, authenticating as the upstream asks. Throws UPSTREAM_UNAVAILABLE for network
   * failures and timeouts; every HTTP status is returned to the caller (see `expectStatus`).
   */
  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= RETRY_DELAYS_MS.length;
      let res: UpstreamResponse;
      try {
        res = await this.attempt(req);
      } catch (err) {
        if (last || !isDroppedConnection(err)) throw err;
        await sleep(RETRY_DELAYS_MS[attempt]!);
        continue;
      }
      if (last || !RETRY_STATUSES.has(res.status)) return res;
      release(res.body);
      await sleep(RETRY_DELAYS_MS[attempt]!);
    }
  }

  private async attempt(req: UpstreamRequest): Promise<UpstreamResponse> {
    const started = this.opts.clock.now();
    const scope = req.repository ? `repository:${req.repository}:pull` : undefined;
    let outcome = 'error';
    const releaseGate = this.opts.fetchGate ? await this.opts.fetchGate.acquire() : undefined;
    let gateHeld = releaseGate !== undefined;
    try {
      let res = await this.send(req, await this.preemptiveAuth(scope));
      if (res.status === 401) {
        const auth = await this.answerChallenge(res, scope);
        if (auth) {
          await discard(res.body);
          res = await this.send(req, auth);
        }
      }
      outcome = String(res.status);
      this.observeRateLimit(res);
      if (releaseGate && req.method === 'GET') {
        gateHeld = false;
        res.body.once('close', releaseGate).once('end', releaseGate).once('error', releaseGate);
      }
      return res;
    } finally {
      if (gateHeld) releaseGate?.();
      this.opts.metrics?.upstreamRequests.inc({ upstream: this.host, method: req.method, kind: req.kind, outcome });
      this.opts.logger.info(
        { upstream: this.host, method: req.method, path: req.path, kind: req.kind, outcome, ms: this.opts.clock.now() - started },
        'upstream request',
      );
    }
  }

  private async preemptiveAuth(scope: string | undefined): Promise<string | undefined> {
    if (this.bearer) {
      const key = TokenCache.key(this.bearer.realm, this.bearer.service, scope);
      const cached = this.tokens.peek(key);
      if (cached) return `Bearer ${cached}`;
      try {
        return `Bearer ${await this.tokens.get(key, () => this.fetchToken(this.bearer!.realm, this.bearer!.service, scope))}`;
      } catch {
        return undefined; // the challenge path will try again and report the failure
      }
    }
    if (this.basic) return basicAuthHeader(this.opts.config.credentials, this.opts.env ?? process.env);
    return undefined;
  }

  private async answerChallenge(res: UpstreamResponse, scope: string | undefined): Promise<string | undefined> {
    const challenges = parseChallenges(res.headers['www-authenticate']);
    const bearer = challenges.find((c: Challenge) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      const realm = bearer.params.realm!;
      const service = bearer.params.service;
      const challengeScope = bearer.params.scope ?? scope;
      this.bearer = service === undefined ? { realm } : { realm, service };
      const key = TokenCache.key(realm, service, challengeScope);
      this.tokens.invalidate(key);
      const token = await this.tokens.get(key, () => this.fetchToken(realm, service, challengeScope));
      return `Bearer ${token}`;
    }
    if (challenges.some((c) => c.scheme === 'basic') && this.opts.config.credentials && !this.basic) {
      this.basic = true;
      return basicAuthHeader(this.opts.config.credentials, this.opts.env ?? process.env);
    }
    return undefined;
  }

  private async fetchToken(realm: string, service: string | undefined, scope: string | undefined): Promise<{ token: string; expiresInSeconds: number }> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `upstream ${this.host} sent an invalid token realm`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `upstream ${this.host} token realm is not http(s)`);
    if (service) url.searchParams.set('service', service);
    if (scope) url.searchParams.set('scope', scope);
    const headers: Record<string, string> = { accept: 'application/json' };
    const basic = basicAuthHeader(this.opts.config.credentials, this.opts.env ?? process.env);
    if (basic) headers.authorization = basic;
    let res: Dispatcher.ResponseData;
    try {
      res = await this.dispatcher.request({ origin: url.origin, path: url.pathname + url.search, method: 'GET', headers });
    } catch (err) {
      this.opts.metrics?.upstreamRequests.inc({ upstream: this.host, method: 'GET', kind: 'token', outcome: 'error' });
      throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `token endpoint of ${this.host} unreachable: ${(err as Error).message}`, { cause: err });
    }
    this.opts.metrics?.upstreamRequests.inc({ upstream: this.host, method: 'GET', kind: 'token', outcome: String(res.statusCode) });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > TOKEN_MAX_BYTES) {
        res.body.destroy();
        throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `token response of ${this.host} too large`);
      }
      chunks.push(chunk);
    }
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new MirrorgateError('UNAUTHORIZED', `upstream ${this.host} refused the configured credentials`, { status: 502 });
    }
    if (res.statusCode !== 200) throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `token endpoint of ${this.host} answered ${res.statusCode}`);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
    } catch {
      throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `token endpoint of ${this.host} sent invalid JSON`);
    }
    const token = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!token) throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `token endpoint of ${this.host} sent no token`);
    const expires = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    return { token, expiresInSeconds: expires };
  }

  /** One request, following redirects; Authorization only ever goes to the upstream's own origin. */
  private async send(req: UpstreamRequest, authorization: string | undefined): Promise<UpstreamResponse> {
    let url = new URL(req.path, this.baseUrl);
    if (this.baseUrl.pathname !== '/' && !req.path.startsWith(this.baseUrl.pathname)) {
      url = new URL(this.baseUrl.pathname.replace(/\/$/, '') + req.path, this.baseUrl);
    }
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': 'mirrorgate', ...(req.headers ?? {}) };
      if (authorization && url.origin === this.baseUrl.origin) headers.authorization = authorization;
      let res: Dispatcher.ResponseData;
      try {
        res = await this.dispatcher.request({ origin: url.origin, path: url.pathname + url.search, method: req.method, headers });
      } catch (err) {
        throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `upstream ${this.host} unreachable: ${(err as Error).message}`, { cause: err });
      }
      const location = res.headers.location;
      if (REDIRECTS.has(res.statusCode) && typeof location === 'string') {
        await discard(res.body);
        if (hop >= MAX_REDIRECTS) throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `upstream ${this.host}: too many redirects`);
        url = new URL(location, url);
        if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `upstream ${this.host} redirected to ${url.protocol}`);
        continue;
      }
      return { status: res.statusCode, headers: res.headers, body: res.body, url: url.toString() };
    }
  }

  private observeRateLimit(res: UpstreamResponse): void {
    const remaining = header(res.headers, 'ratelimit-remaining');
    if (!remaining) return;
    const n = Number.parseInt(remaining, 10);
    if (Number.isFinite(n)) {
      this.opts.metrics?.rateLimitRemaining.set({ upstream: this.host }, n);
      this.opts.logger.info({ upstream: this.host, ratelimitRemaining: n }, 'upstream rate limit');
    }
  }
}
