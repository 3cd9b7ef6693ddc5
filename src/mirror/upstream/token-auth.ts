import type { Clock } from '../../common/clock.js';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { UpstreamConfig } from '../../config/schema.js';
import type { MirrorMetrics } from '../metrics.js';
import { readCapped } from '../proxy/read-capped.js';
import { parseChallenges } from './challenge.js';
import { basicAuthHeader } from './credentials.js';
import { discard, type UpstreamResponse } from './messages.js';
import { TokenCache } from './token-cache.js';
import type { UpstreamTransport } from './transport.js';

const TOKEN_MAX_BYTES = 64 * 1024;

export interface TokenAuthOptions {
  host: string;
  config: UpstreamConfig;
  transport: UpstreamTransport;
  logger: Logger;
  clock: Clock;
  metrics?: MirrorMetrics;
  env: NodeJS.ProcessEnv;
}

/**
 * Docker's token flow for one upstream: Bearer challenges with a per-scope token cache, and Basic
 * challenges. The credentials go to two places only: the upstream's own origin (Basic) and its token
 * realm, which is the configured `tokenRealm` or else the realm the upstream's own origin announced. A
 * challenge from any other origin (a host a redirect led to) is not answered and changes nothing; an
 * https upstream's realm must be https.
 */
export class TokenAuth {
  private readonly tokens: TokenCache;
  private readonly configuredRealm: URL | undefined;
  /** The last accepted Bearer challenge, so later requests can fetch a token before being told to. */
  private bearer: { realm: URL; service?: string } | undefined;
  private basic = false;

  constructor(private readonly opts: TokenAuthOptions) {
    this.tokens = new TokenCache(opts.clock);
    this.configuredRealm = opts.config.tokenRealm !== undefined ? new URL(opts.config.tokenRealm) : undefined;
  }

  /** Authorization to send before any challenge: a token of the known realm, or Basic once it was asked for. */
  async preemptive(scope: string | undefined): Promise<string | undefined> {
    const bearer = this.bearer;
    if (bearer) {
      const key = TokenCache.key(bearer.realm.href, bearer.service, scope);
      const cached = this.tokens.peek(key);
      if (cached) return `Bearer ${cached}`;
      try {
        return `Bearer ${await this.tokens.get(key, () => this.fetchToken(bearer.realm, bearer.service, scope))}`;
      } catch {
        return undefined; // the challenge path will try again and report the failure
      }
    }
    if (this.basic) return this.basicAuth();
    return undefined;
  }

  /** The Authorization that answers a 401, or undefined when there is nothing to answer it with. */
  async answer(res: UpstreamResponse, scope: string | undefined): Promise<string | undefined> {
    if (new URL(res.url).origin !== this.opts.transport.baseUrl.origin) {
      this.opts.logger.warn({ upstream: this.opts.host, from: new URL(res.url).origin }, 'challenge from a host the upstream redirected to: not answered');
      return undefined;
    }
    const challenges = parseChallenges(res.headers['www-authenticate']);
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      const realm = this.acceptRealm(bearer.params.realm!);
      const service = bearer.params.service;
      const challengeScope = bearer.params.scope ?? scope;
      this.bearer = service === undefined ? { realm } : { realm, service };
      const key = TokenCache.key(realm.href, service, challengeScope);
      this.tokens.invalidate(key);
      return `Bearer ${await this.tokens.get(key, () => this.fetchToken(realm, service, challengeScope))}`;
    }
    if (challenges.some((c) => c.scheme === 'basic') && this.opts.config.credentials && !this.basic) {
      this.basic = true;
      return this.basicAuth();
    }
    return undefined;
  }

  private basicAuth(): string | undefined {
    return basicAuthHeader(this.opts.config.credentials, this.opts.env);
  }

  /** The announced realm, if the credentials may go there; otherwise UPSTREAM_UNAVAILABLE (the realm is logged, not echoed). */
  private acceptRealm(announced: string): URL {
    let url: URL | undefined;
    try {
      url = new URL(announced);
    } catch {
      url = undefined;
    }
    const configured = this.configuredRealm;
    const reason = !url
      ? 'not a URL'
      : url.protocol !== 'https:' && url.protocol !== 'http:'
        ? 'not http(s)'
        : this.opts.transport.baseUrl.protocol === 'https:' && url.protocol === 'http:'
          ? 'plain http for an https upstream'
          : configured && url.origin + url.pathname !== configured.origin + configured.pathname
            ? 'not the configured tokenRealm'
            : undefined;
    if (reason === undefined && url) return url;
    this.opts.logger.warn({ upstream: this.opts.host, realm: announced.slice(0, 300), reason }, 'token realm refused');
    throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `upstream ${this.opts.host} announced a token realm the mirror does not use`);
  }

  private async fetchToken(realm: URL, service: string | undefined, scope: string | undefined): Promise<{ token: string; expiresInSeconds: number }> {
    const { host, metrics } = this.opts;
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    if (scope) url.searchParams.set('scope', scope);
    const headers: Record<string, string> = { accept: 'application/json' };
    const basic = this.basicAuth();
    if (basic) headers.authorization = basic;
    let res: UpstreamResponse;
    try {
      res = await this.opts.transport.exchange(url, 'GET', headers, `token endpoint of ${host}`);
    } catch (err) {
      metrics?.upstreamRequests.inc({ upstream: host, method: 'GET', kind: 'token', outcome: 'error' });
      throw err;
    }
    metrics?.upstreamRequests.inc({ upstream: host, method: 'GET', kind: 'token', outcome: String(res.status) });
    if (res.status !== 200) {
      await discard(res.body);
      if (res.status === 401 || res.status === 403) {
        throw new MirrorgateError('UNAUTHORIZED', `upstream ${host} refused the configured credentials`, { status: 502 });
      }
      throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `token endpoint of ${host} answered ${res.status}`);
    }
    const bytes = await readCapped(res.body, TOKEN_MAX_BYTES, `token response of ${host}`);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(bytes.toString('utf8')) as typeof body;
    } catch {
      throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `token endpoint of ${host} sent invalid JSON`);
    }
    const token = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!token) throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `token endpoint of ${host} sent no token`);
    const expires = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    return { token, expiresInSeconds: expires };
  }
}
