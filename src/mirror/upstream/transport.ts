import { Agent, type Dispatcher } from 'undici';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { UpstreamConfig } from '../../config/schema.js';
import { publicOnlyLookup } from './addresses.js';
import { discard, header, release, type UpstreamKind, type UpstreamRequest, type UpstreamResponse } from './messages.js';
import { redirectRefusal } from './redirects.js';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
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

/** Runs an attempt, again after a short backoff when the connection dropped or the upstream answered 5xx. */
export async function withRetries(attempt: () => Promise<UpstreamResponse>): Promise<UpstreamResponse> {
  for (let i = 0; ; i++) {
    const last = i >= RETRY_DELAYS_MS.length;
    let res: UpstreamResponse;
    try {
      res = await attempt();
    } catch (err) {
      if (last || !isDroppedConnection(err)) throw err;
      await sleep(RETRY_DELAYS_MS[i]!);
      continue;
    }
    if (last || !RETRY_STATUSES.has(res.status)) return res;
    release(res.body);
    await sleep(RETRY_DELAYS_MS[i]!);
  }
}

export interface UpstreamTransportOptions {
  /** Upstream key (registry host), for messages and logs. */
  host: string;
  config: UpstreamConfig;
  logger: Logger;
  /** For tests: a dispatcher to use instead of the upstream's own pool (redirects elsewhere keep theirs). */
  dispatcher?: Dispatcher;
}

/**
 * The HTTP side of one upstream: a connection pool with per-phase timeouts, retries (`withRetries`), and
 * redirects, which are followed only for blobs (unless configured `redirects: all`) and only where
 * `redirectRefusal` allows. Hosts reached by
 * a redirect get a pool of their own whose name lookups refuse non-public addresses, unless the upstream
 * allows private redirects. Connection errors are logged; callers get a message without addresses.
 */
export class UpstreamTransport {
  readonly baseUrl: URL;
  private readonly pool: Dispatcher;
  private readonly elsewhere: Dispatcher;
  private readonly owned: Dispatcher[] = [];

  constructor(private readonly opts: UpstreamTransportOptions) {
    this.baseUrl = new URL(opts.config.url);
    const { config } = opts;
    const agent = (guarded: boolean): Agent => {
      const a = new Agent({
        connections: config.maxConnections,
        connect: { timeout: config.timeouts.connect, ...(guarded ? { lookup: publicOnlyLookup } : {}) },
        headersTimeout: config.timeouts.headers,
        bodyTimeout: config.timeouts.body,
        keepAliveTimeout: 10_000, // idle upstream connections are closed after this (undici default is 4 s)
      });
      this.owned.push(a);
      return a;
    };
    this.pool = opts.dispatcher ?? agent(false);
    this.elsewhere = config.allowPrivateRedirects ? this.pool : agent(true);
  }

  /** The URL of an API path on the upstream (whose URL may have a path prefix). */
  urlOf(path: string): URL {
    if (this.baseUrl.pathname !== '/' && !path.startsWith(this.baseUrl.pathname)) {
      return new URL(this.baseUrl.pathname.replace(/\/$/, '') + path, this.baseUrl);
    }
    return new URL(path, this.baseUrl);
  }

  /**
   * One exchange, no redirects followed, through the upstream's pool unless `elsewhere`. Network failures
   * and timeouts become UPSTREAM_UNAVAILABLE `<what> unreachable`; the cause (which may name internal
   * addresses) goes to the log only.
   */
  async exchange(url: URL, method: 'GET' | 'HEAD', headers: Record<string, string>, what: string, elsewhere = false): Promise<UpstreamResponse> {
    let res: Dispatcher.ResponseData;
    try {
      res = await (elsewhere ? this.elsewhere : this.pool).request({ origin: url.origin, path: url.pathname + url.search, method, headers });
    } catch (err) {
      this.opts.logger.warn({ upstream: this.opts.host, target: url.origin + url.pathname, err: (err as Error).message }, 'upstream connection failed');
      throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `${what} unreachable`, { cause: err });
    }
    return { status: res.statusCode, headers: res.headers, body: res.body, url: url.toString() };
  }

  /** One request, following the redirects allowed for its kind; `authorization` goes only to the upstream's own origin. */
  async send(req: UpstreamRequest, authorization: string | undefined): Promise<UpstreamResponse> {
    let url = this.urlOf(req.path);
    for (let hop = 0; ; hop++) {
      const own = url.origin === this.baseUrl.origin;
      const headers: Record<string, string> = { 'user-agent': 'mirrorgate', ...(req.headers ?? {}) };
      if (authorization && own) headers.authorization = authorization;
      const res = await this.exchange(url, req.method, headers, `upstream ${this.opts.host}`, !own);
      const location = header(res.headers, 'location');
      if (!REDIRECTS.has(res.status) || location === undefined) return res;
      await discard(res.body);
      url = this.redirectTarget(req.kind, url, location, hop);
    }
  }

  private redirectTarget(kind: UpstreamKind, from: URL, location: string, hop: number): URL {
    let target: URL | undefined;
    try {
      target = new URL(location, from);
    } catch {
      target = undefined;
    }
    const reason =
      kind !== 'blob' && this.opts.config.redirects !== 'all'
        ? `a ${kind} request was redirected (only blob redirects are followed unless the upstream has redirects: all)`
        : hop >= MAX_REDIRECTS
          ? `more than ${MAX_REDIRECTS} redirects`
          : !target
            ? 'invalid Location'
            : redirectRefusal(target, this.baseUrl, this.opts.config.allowPrivateRedirects);
    if (reason === undefined && target) return target;
    // The Location (query strings of storage redirects are often signed) stays out of the log.
    this.opts.logger.warn({ upstream: this.opts.host, kind, target: target ? target.origin + target.pathname : undefined, reason }, 'upstream redirect refused');
    throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `upstream ${this.opts.host} answered with a redirect the mirror does not follow`);
  }

  async close(): Promise<void> {
    await Promise.all(this.owned.map((d) => d.close()));
  }
}
