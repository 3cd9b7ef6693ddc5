import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { systemClock, type Clock } from '../common/clock.js';
import { TrafficHistory } from './status/traffic.js';

/**
 * The mirror's Prometheus metrics, on a registry of its own so several mirrors can run in one process
 * (tests) without sharing counters. Label values are bounded: upstream keys come from config, kinds and
 * results from fixed lists.
 */
export class MirrorMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'kind' | 'status'>;
  readonly requestDuration: Histogram<'kind'>;
  readonly cache: Counter<'kind' | 'result'>;
  readonly upstreamRequests: Counter<'upstream' | 'method' | 'kind' | 'outcome'>;
  readonly verificationFailures: Counter<'upstream' | 'kind'>;
  readonly certNotAfter: Gauge;
  readonly bytesServed: Counter<'kind'>;
  readonly inflightFetches: Gauge;
  readonly rateLimitRemaining: Gauge<'upstream'>;
  readonly rateLimitLimit: Gauge<'upstream'>;
  readonly staleServed: Counter<'upstream'>;
  readonly warmImages: Gauge<'state'>;
  readonly prefetchRequests: Counter<'result'>;
  readonly prefetchImages: Counter<'state'>;
  readonly prefetchPending: Gauge;
  /** The cache lookups of the last hours, per minute, for the status page's chart. */
  readonly traffic: TrafficHistory;

  constructor(options: { defaultMetrics?: boolean; clock?: Clock } = {}) {
    this.traffic = new TrafficHistory(options.clock ?? systemClock);
    const registers = [this.registry];
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'mirrorgate_' });
    this.requests = new Counter({
      name: 'mirrorgate_mirror_requests_total',
      help: 'Requests answered by the mirror, by kind of endpoint and status code',
      labelNames: ['method', 'kind', 'status'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'mirrorgate_mirror_request_duration_seconds',
      help: 'Time to answer a request (until the last byte was handed to the socket)',
      labelNames: ['kind'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers,
    });
    this.cache = new Counter({
      name: 'mirrorgate_cache_lookups_total',
      help: 'Cache lookups by kind (blob, manifest, tag) and result (hit, miss, stale, revalidated)',
      labelNames: ['kind', 'result'],
      registers,
    });
    this.upstreamRequests = new Counter({
      name: 'mirrorgate_upstream_requests_total',
      help: 'Requests sent to upstream registries, by upstream, method, kind and outcome (status code or error)',
      labelNames: ['upstream', 'method', 'kind', 'outcome'],
      registers,
    });
    this.verificationFailures = new Counter({
      name: 'mirrorgate_upstream_verification_failures_total',
      help: 'Blobs and manifests from upstreams that failed verification (digest or size) and were not stored, by upstream and kind',
      labelNames: ['upstream', 'kind'],
      registers,
    });
    this.certNotAfter = new Gauge({
      name: 'mirrorgate_mirror_cert_not_after_seconds',
      help: 'Expiry of the serving certificate from mirror.tls (unix seconds); 0 without mirror.tls',
      registers,
    });
    this.bytesServed = new Counter({
      name: 'mirrorgate_bytes_served_total',
      help: 'Body bytes sent to clients',
      labelNames: ['kind'],
      registers,
    });
    this.inflightFetches = new Gauge({
      name: 'mirrorgate_inflight_fetches',
      help: 'Blob downloads from upstreams in progress',
      registers,
    });
    this.rateLimitRemaining = new Gauge({
      name: 'mirrorgate_upstream_ratelimit_remaining',
      help: 'Pulls left in the upstream rate-limit window, from its ratelimit-remaining header (Docker Hub)',
      labelNames: ['upstream'],
      registers,
    });
    this.rateLimitLimit = new Gauge({
      name: 'mirrorgate_upstream_ratelimit_limit',
      help: 'Pulls allowed per upstream rate-limit window, from its ratelimit-limit header (Docker Hub)',
      labelNames: ['upstream'],
      registers,
    });
    this.staleServed = new Counter({
      name: 'mirrorgate_stale_served_total',
      help: 'Cached tags served past their freshness window because the upstream could not be reached',
      labelNames: ['upstream'],
      registers,
    });
    this.warmImages = new Gauge({
      name: 'mirrorgate_warm_images',
      help: 'Images kept warm (mirror.warm.images), by state (pending, warming, warm, failed)',
      labelNames: ['state'],
      registers,
    });
    this.prefetchRequests = new Counter({
      name: 'mirrorgate_prefetch_requests_total',
      help: 'Prefetch requests (POST /v2/_mirrorgate/prefetch), by result (accepted, invalid, denied)',
      labelNames: ['result'],
      registers,
    });
    this.prefetchImages = new Counter({
      name: 'mirrorgate_prefetch_images_total',
      help: 'Images asked for by prefetch requests, by state (queued, merged, dropped, hosted, fetched, failed)',
      labelNames: ['state'],
      registers,
    });
    this.prefetchPending = new Gauge({
      name: 'mirrorgate_prefetch_pending',
      help: 'Prefetched images waiting in the queue or being fetched',
      registers,
    });
  }

  /** One cache lookup: the counter and the status page's per-minute history. */
  cacheLookup(kind: 'blob' | 'manifest' | 'tag', result: string): void {
    this.cache.inc({ kind, result });
    this.traffic.record(result);
  }
}
