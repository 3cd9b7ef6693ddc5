import http from 'node:http';
import https from 'node:https';
import { systemClock, type Clock } from '../common/clock.js';
import { fail } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { formatListen } from '../config/listen.js';
import type { Config } from '../config/schema.js';
import type { PasswordVerifier } from './auth/authenticator.js';
import { AccessRules } from './auth/access.js';
import { createMirrorAuth, type MirrorAuth } from './auth/create-auth.js';
import { AccessTracker } from './cache/access-tracker.js';
import { CacheManager } from './cache/cache-manager.js';
import { createMirrorApp } from './http/app.js';
import { requestGuard } from './http/guard.js';
import { ListeningSocket, urlOf, type ConnectionSource } from './http/connection-source.js';
import { createHttpServer } from './http/http-server.js';
import { prefetchRoute } from './http/prefetch-route.js';
import { Semaphore } from './limits/semaphore.js';
import { LocalBlobStore } from './local/local-blob-store.js';
import { LocalManifestStore } from './local/local-manifest-store.js';
import { MirrorMetrics } from './metrics.js';
import { Prefetcher } from './prefetch/prefetcher.js';
import { ProxyBlobStore } from './proxy/proxy-blob-store.js';
import { ProxyManifestStore } from './proxy/proxy-manifest-store.js';
import { HostedManifests } from './hosted/hosted-manifests.js';
import { HostedNames, isHosted } from './hosted/hosted-names.js';
import { Uploads } from './hosted/uploads.js';
import { RepositoryRouter } from './repository/router.js';
import { CacheContentsReader } from './status/cache-contents.js';
import { StatusService } from './status/status-report.js';
import { createStorage } from './store/create-storage.js';
import type { Storage } from './store/storage.js';
import { StorageFullState } from './store/storage-full.js';
import { TlsFiles } from './tls/tls-files.js';
import { Upstreams } from './upstream/upstreams.js';
import { fetchImage } from './warm/fetch-image.js';
import { RepositorySource, type CacheProbe } from './warm/repository-source.js';
import { WarmKeeper } from './warm/warm-keeper.js';

export interface MirrorServerDeps {
  logger: Logger;
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
  metrics?: MirrorMetrics;
  /** Checks a password against a bcrypt hash (default bcryptjs); tests pass a counting one. */
  passwordVerifier?: PasswordVerifier;
  /** The storage to serve from (default: the one the configuration names). */
  storage?: Storage;
  /**
   * This process is one of the mirror's workers: the primary claimed and swept the storage, other workers
   * serve from it too (shared metadata and leases).
   */
  worker?: boolean;
  /** What /metrics answers (default: this process's registry). */
  metricsText?: () => Promise<string>;
  /** Where connections come from (default: a socket listening on `mirror.listen`). */
  connections?: ConnectionSource;
}

/**
 * The mirror process: storage checked and swept, the HTTP(S) server listening, and a graceful stop that
 * lets in-flight requests finish. Built bottom-up: storage, the local stores, the caching stores wrapping
 * them, the router, the cache lifecycle over the same storage.
 */
export class MirrorServer {
  readonly storage: Storage;
  /** Whether the storage was made here (then it is closed here); a storage passed in is the caller's. */
  private readonly ownsStorage: boolean;
  readonly metrics: MirrorMetrics;
  readonly upstreams: Upstreams;
  readonly blobs: ProxyBlobStore;
  readonly manifests: ProxyManifestStore;
  readonly local: { blobs: LocalBlobStore; manifests: LocalManifestStore };
  readonly router: RepositoryRouter;
  /** Blob uploads into hosted repositories. */
  readonly uploads: Uploads;
  private uploadExpiry: NodeJS.Timeout | undefined;
  private server: http.Server | https.Server | undefined;
  private ready = false;
  private stopping = false;
  /** Undefined when no htpasswd file is configured. */
  readonly auth: MirrorAuth | undefined;
  /** Cache lifecycle: access tracking, eviction, retention, garbage collection (docs/cache.md). */
  readonly cache: CacheManager;
  /** Images kept warm (`mirror.warm`). */
  readonly warm: WarmKeeper;
  /** Images fetched ahead of a pull at the webhook's word (`mirror.prefetch`); undefined when off. */
  readonly prefetcher: Prefetcher | undefined;
  /** What the status page at /ui shows. */
  readonly status: StatusService;
  private tls: TlsFiles | undefined;
  private readonly connections: ConnectionSource;

  constructor(private readonly config: Config, private readonly deps: MirrorServerDeps) {
    const clock = deps.clock ?? systemClock;
    const logger = deps.logger;
    this.metrics = deps.metrics ?? new MirrorMetrics({ defaultMetrics: true, clock });
    this.ownsStorage = !deps.storage;
    this.connections = deps.connections ?? new ListeningSocket(config.mirror.listen);
    this.storage = deps.storage ?? createStorage(config.mirror, { clock, logger, registry: this.metrics.registry, env: deps.env ?? process.env, shared: deps.worker ?? false });
    const limits = config.mirror.limits;
    const fetchGate = new Semaphore({ max: limits.upstreamFetches, maxQueued: limits.upstreamQueue, queueTimeoutMs: limits.upstreamQueueTimeout, what: 'too many upstream fetches in progress' });
    this.upstreams = new Upstreams(config, { logger, clock, metrics: this.metrics, env: deps.env ?? process.env, fetchGate });
    this.auth = createMirrorAuth(config.mirror.auth, { logger, clock, watchIntervalMs: config.mirror.watchInterval, verify: deps.passwordVerifier });
    const tracker = new AccessTracker(this.storage.metadata, { clock, logger });
    this.local = { blobs: new LocalBlobStore(this.storage, tracker), manifests: new LocalManifestStore(this.storage, tracker) };
    const storageFull = new StorageFullState(clock);
    this.blobs = new ProxyBlobStore({
      local: this.local.blobs,
      metadata: this.storage.metadata,
      upstreams: this.upstreams,
      logger,
      metrics: this.metrics,
      storageFull,
    });
    this.manifests = new ProxyManifestStore({ local: this.local.manifests, upstreams: this.upstreams, clock, logger, metrics: this.metrics });
    const hosted = config.mirror.hosted;
    this.uploads = new Uploads({ blobs: this.local.blobs, content: this.storage.blobs, metadata: this.storage.metadata, clock, logger, expiryMs: hosted.uploadExpiry });
    const pushes = new HostedManifests({ blobs: this.local.blobs, manifests: this.local.manifests, metadata: this.storage.metadata, clock });
    this.router = new RepositoryRouter({
      upstreams: this.upstreams,
      hostedNames: new HostedNames(hosted.repositories),
      proxy: { blobs: this.blobs, manifests: this.manifests },
      local: this.local,
      hosted: { uploads: this.uploads, pushes },
      metadata: this.storage.metadata,
      logger,
    });
    const { blobs, uploads } = this;
    const localManifests = this.local.manifests;
    this.cache = new CacheManager(config.mirror, {
      storage: this.storage,
      tracker,
      clock,
      logger,
      registry: this.metrics.registry,
      inflight: { isFetching: (d) => blobs.isFetching(d), isWriting: (id) => blobs.isWriting(id) || uploads.isWriting(id) },
      onRemoved: (keys) => localManifests.forget(keys),
      claimed: deps.worker ?? false,
    });
    const localBlobs = this.local.blobs;
    const cacheProbe: CacheProbe = {
      isCached: async (repo, digest) => (await localBlobs.holds(repo, digest)) && (await localBlobs.statContent(digest)) !== undefined,
      settled: (digest) => this.blobs.settled(digest),
    };
    this.warm = new WarmKeeper(config.mirror.warm, {
      resolve: (repo) => this.router.resolve(repo.path, repo.upstream),
      cache: cacheProbe,
      clock,
      logger,
      metrics: this.metrics,
    });
    const prefetch = config.mirror.prefetch;
    const platforms = prefetch.platforms ?? config.mirror.warm.platforms;
    this.prefetcher = prefetch.enabled
      ? new Prefetcher(prefetch, {
          // The warm images' fetch, through the same caching stores as a pull.
          fetch: async (target, signal) => {
            // With the disk full a blob would be streamed from the upstream and thrown away: not worth the bandwidth.
            if (storageFull.isFull) throw fail('STORAGE_FULL', 'storage is full: nothing is prefetched');
            return fetchImage(new RepositorySource(this.router.resolve(target.repo.path, target.repo.upstream), cacheProbe), target.reference, platforms, signal);
          },
          logger,
          metrics: this.metrics,
        })
      : undefined;
    this.status = new StatusService({
      contents: new CacheContentsReader({ storage: this.storage, lastAccess: (key) => tracker.lastAccess(key), publicName: (repo) => (isHosted(repo) ? repo.path : this.upstreams.publicName(repo)), clock }),
      upstreams: this.upstreams,
      metrics: this.metrics,
      cacheSize: () => this.cache.sizeEstimate,
      maxSize: config.mirror.storage.maxSize,
      warm: () => this.warm.status(),
      clock,
    });
  }

  /** Checks storage, sweeps crash leftovers, listens, starts keeping images warm. Resolves with the bound address. */
  async start(): Promise<{ url: string; host: string; port: number }> {
    await this.prepareStorage();
    await this.cache.start();
    const expiry = this.config.mirror.hosted.uploadExpiry;
    this.uploadExpiry = setInterval(() => {
      this.uploads.expire().catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'could not expire idle uploads'));
    }, Math.max(1000, Math.min(60_000, expiry / 4)));
    this.uploadExpiry.unref();
    let address;
    try {
      address = await this.listenAndServe();
    } catch (err) {
      await this.cache.stop();
      throw err;
    }
    this.warm.start();
    return address;
  }

  private async listenAndServe(): Promise<{ url: string; host: string; port: number }> {
    const access = new AccessRules(this.config.mirror.access, this.config.mirror.auth.realm);
    const app = createMirrorApp({
      router: this.router,
      access,
      logger: this.deps.logger,
      metrics: this.metrics,
      isReady: () => this.ready,
      isStopping: () => this.stopping,
      guard: requestGuard(this.config.mirror.limits, this.deps.logger),
      auth: this.auth?.middleware,
      status: this.status,
      prefetch: this.prefetcher ? prefetchRoute({ router: this.router, access, prefetcher: this.prefetcher, metrics: this.metrics, logger: this.deps.logger }) : undefined,
      metricsText: this.deps.metricsText,
    });
    const tls = this.config.mirror.tls;
    if (tls) {
      this.tls = new TlsFiles(tls, { logger: this.deps.logger, metrics: this.metrics });
      this.tls.watch(this.config.mirror.watchInterval);
    }
    this.server = createHttpServer(app, this.config.mirror, this.tls);
    const addr = await this.connections.open(this.server);
    this.ready = true;
    const url = urlOf(addr, Boolean(tls));
    this.deps.logger.info(
      {
        listen: formatListen({ host: addr.address, port: addr.port }),
        tls: Boolean(tls),
        auth: this.auth ? (this.config.mirror.auth.anonymousRead ? 'htpasswd, anonymous read' : 'htpasswd') : 'none',
        storage: this.storage.description,
        upstreams: Object.fromEntries(Object.entries(this.config.upstreams).map(([h, u]) => [h, u.url])),
      },
      `mirror listening on ${url}, mirroring ${this.upstreams.hosts.join(', ')}`,
    );
    return { url, host: addr.address, port: addr.port };
  }

  private async prepareStorage(): Promise<void> {
    const { swept } = await this.storage.prepare();
    if (swept > 0) this.deps.logger.warn({ swept }, 'removed temp files left by an earlier run');
  }

  private stopped: Promise<void> | undefined;

  /**
   * Stops accepting connections and waits up to `graceMs` for in-flight requests, then closes the rest.
   * Safe to call more than once: later calls wait for the first.
   */
  stop(graceMs = this.config.mirror.shutdownGrace): Promise<void> {
    this.stopped ??= this.shutdown(graceMs);
    return this.stopped;
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.ready = false;
    this.stopping = true;
    const server = this.server;
    if (server) {
      const closed = this.connections.close();
      // Keep-alive connections become idle as their requests finish: close them as they do.
      const sweeper = setInterval(() => server.closeIdleConnections(), 50);
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearInterval(sweeper);
      clearTimeout(timer);
      this.server = undefined;
    }
    await this.auth?.close();
    this.tls?.close();
    clearInterval(this.uploadExpiry);
    // A warm fetch or a prefetch asks for nothing more; the requests it has in progress finish as the upstreams close.
    const warmStopped = this.warm.stop();
    const prefetchStopped = this.prefetcher?.stop();
    await this.upstreams.close();
    await warmStopped;
    await prefetchStopped;
    await this.cache.stop();
    if (this.ownsStorage) await this.storage.close?.();
  }
}
