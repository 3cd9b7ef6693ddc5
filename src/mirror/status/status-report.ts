import type { Clock } from '../../common/clock.js';
import type { AccessTarget } from '../auth/access.js';
import type { MirrorMetrics } from '../metrics.js';
import type { UpstreamHealthSnapshot } from '../upstream/health.js';
import type { Upstreams } from '../upstream/upstreams.js';
import type { WarmStatus } from '../warm/warm-keeper.js';
import type { CachedRepository, CacheContentsReader } from './cache-contents.js';
import type { TrafficSeries } from './traffic.js';

export interface UpstreamStatus extends UpstreamHealthSnapshot {
  /** The upstream key (registry host), as in `upstreams`. */
  host: string;
  /** Docker Hub's pull quota as its last manifest answer gave it (`ratelimit-remaining`, `ratelimit-limit`). */
  rateLimit?: { remaining?: number; limit?: number };
}

/** Everything the status page shows, as `/ui/api/status` answers it. */
export interface StatusReport {
  generatedAt: number;
  cache: {
    /** Bytes of content, as the cache lifecycle last measured it (plus what was stored since); undefined before the first pass. */
    sizeBytes?: number;
    /** `mirror.storage.maxSize`, when set. */
    maxSize?: number;
    /** The repositories the visitor may pull: how many, and the first MAX_REPOSITORIES by name in detail. */
    contents: { at: number; total: number; repositories: CachedRepository[] };
  };
  upstreams: UpstreamStatus[];
  traffic: TrafficSeries;
  warm: WarmStatus;
}

export interface StatusDeps {
  contents: CacheContentsReader;
  upstreams: Pick<Upstreams, 'hosts' | 'client'>;
  metrics: Pick<MirrorMetrics, 'traffic' | 'rateLimitRemaining' | 'rateLimitLimit'>;
  cacheSize(): number | undefined;
  maxSize: number | undefined;
  warm(): WarmStatus;
  clock: Clock;
}

/** Assembles the status report from the parts of the mirror that know each piece. */
export class StatusService {
  constructor(private readonly deps: StatusDeps) {}

  /** The report as one visitor sees it: only the repositories `visible` admits (what /v2/_catalog lists to them). */
  async report(visible: (target: AccessTarget) => boolean): Promise<StatusReport> {
    const { deps } = this;
    const [held, remaining, limit] = await Promise.all([deps.contents.read(), gaugeByUpstream(deps.metrics.rateLimitRemaining), gaugeByUpstream(deps.metrics.rateLimitLimit)]);
    const contents = { at: held.at, total: held.all.filter(visible).length, repositories: held.repositories.filter(visible) };
    const size = deps.cacheSize();
    return {
      generatedAt: deps.clock.now(),
      cache: { ...(size !== undefined ? { sizeBytes: size } : {}), ...(deps.maxSize !== undefined ? { maxSize: deps.maxSize } : {}), contents },
      upstreams: deps.upstreams.hosts.map((host) => {
        const rateLimit = { ...(remaining.has(host) ? { remaining: remaining.get(host)! } : {}), ...(limit.has(host) ? { limit: limit.get(host)! } : {}) };
        return { host, ...deps.upstreams.client(host).health.snapshot(), ...(Object.keys(rateLimit).length > 0 ? { rateLimit } : {}) };
      }),
      traffic: deps.metrics.traffic.series(),
      warm: deps.warm(),
    };
  }
}

/** A gauge's values by its `upstream` label. */
async function gaugeByUpstream(gauge: MirrorMetrics['rateLimitRemaining']): Promise<Map<string, number>> {
  const { values } = await gauge.get();
  return new Map(values.map((v) => [String(v.labels.upstream), v.value]));
}
