import type { Clock } from '../../common/clock.js';
import { fail } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { Config } from '../../config/schema.js';
import { isValidRepositoryPath, PATH_COMPONENT_RE } from '../../reference/grammar.js';
import type { MirrorMetrics } from '../metrics.js';
import type { RepositoryRef } from '../store/types.js';
import { UpstreamClient } from './client.js';
import { canonicalHost, DOCKER_HUB } from './upstream-host.js';
import type { Semaphore } from '../limits/semaphore.js';

/**
 * The configured upstreams and the routing from a request's repository name to one of them:
 * `library/nginx` -> Docker Hub; `ghcr.io/org/app` -> ghcr.io when configured; `?ns=quay.io` selects
 * quay.io for the whole name. An unconfigured host is an error, never an outbound request.
 */
export class Upstreams {
  private readonly clients = new Map<string, UpstreamClient>();

  constructor(config: Pick<Config, 'upstreams'>, deps: { logger: Logger; clock: Clock; metrics?: MirrorMetrics; env?: NodeJS.ProcessEnv; fetchGate?: Semaphore }) {
    for (const [host, upstream] of Object.entries(config.upstreams)) {
      const key = canonicalHost(host);
      this.clients.set(key, new UpstreamClient({ host: key, config: upstream, ...deps }));
    }
  }

  get hosts(): string[] {
    return [...this.clients.keys()];
  }

  client(upstream: string): UpstreamClient {
    const c = this.clients.get(upstream);
    if (!c) throw fail('UPSTREAM_UNKNOWN', `no upstream configured for ${upstream}`);
    return c;
  }

  /** Resolves the repository named in a request path (and `?ns=`). Throws NAME_INVALID / UPSTREAM_UNKNOWN. */
  resolve(name: string, ns?: string): RepositoryRef {
    if (!isValidRepositoryPath(name)) throw fail('NAME_INVALID', `invalid repository name ${JSON.stringify(name.slice(0, 300))}`);
    let upstream: string;
    let path: string;
    if (ns !== undefined) {
      upstream = canonicalHost(ns);
      if (!this.clients.has(upstream)) throw fail('UPSTREAM_UNKNOWN', `registry ${JSON.stringify(ns.slice(0, 260))} is not a configured upstream`);
      path = name;
    } else {
      const slash = name.indexOf('/');
      const first = slash < 0 ? name : name.slice(0, slash);
      if (slash > 0 && (first.includes('.') || first === 'localhost')) {
        upstream = canonicalHost(first);
        if (!this.clients.has(upstream)) throw fail('UPSTREAM_UNKNOWN', `registry ${first} is not a configured upstream`);
        path = name.slice(slash + 1);
      } else {
        upstream = DOCKER_HUB;
        if (!this.clients.has(upstream)) throw fail('UPSTREAM_UNKNOWN', 'Docker Hub is not a configured upstream');
        path = name;
      }
    }
    if (upstream === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
    if (!isValidRepositoryPath(path) || !path.split('/').every((c) => PATH_COMPONENT_RE.test(c))) {
      throw fail('NAME_INVALID', `invalid repository name ${JSON.stringify(name)}`);
    }
    return { upstream, path };
  }

  /**
   * The name clients use for a repository when they do not send `?ns=`: what `resolve` routes back to it.
   * A Docker Hub path whose first component reads as a host (`ghcr.io/evil/app`) keeps the `docker.io/` prefix.
   */
  publicName(repo: RepositoryRef): string {
    if (repo.upstream !== DOCKER_HUB) return `${repo.upstream}/${repo.path}`;
    const first = repo.path.slice(0, Math.max(0, repo.path.indexOf('/')));
    return first.includes('.') || first === 'localhost' ? `${DOCKER_HUB}/${repo.path}` : repo.path;
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
  }
}
