import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { access, constants, mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { systemClock, type Clock } from '../common/clock.js';
import { MirrorgateError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { formatListen, parseListen } from '../config/listen.js';
import type { Config } from '../config/schema.js';
import { createMirrorApp } from './http/app.js';
import { MirrorMetrics } from './metrics.js';
import { ProxyBlobStore } from './proxy/proxy-blob-store.js';
import { ProxyManifestStore } from './proxy/proxy-manifest-store.js';
import { FsBlobStore } from './store/fs-blob-store.js';
import { FsManifestStore } from './store/fs-manifest-store.js';
import { StorageLayout } from './store/layout.js';
import { sweepTempFiles } from './store/sweep.js';
import { Upstreams } from './upstream/upstreams.js';

export interface MirrorServerDeps {
  logger: Logger;
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
  metrics?: MirrorMetrics;
}

/**
 * The mirror process: storage checked and swept, the HTTP(S) server listening, and a graceful stop that
 * lets in-flight requests finish.
 */
export class MirrorServer {
  readonly layout: StorageLayout;
  readonly metrics: MirrorMetrics;
  readonly upstreams: Upstreams;
  readonly blobs: ProxyBlobStore;
  readonly manifests: ProxyManifestStore;
  readonly local: { blobs: FsBlobStore; manifests: FsManifestStore };
  private server: http.Server | https.Server | undefined;
  private ready = false;
  private stopping = false;

  constructor(private readonly config: Config, private readonly deps: MirrorServerDeps) {
    const clock = deps.clock ?? systemClock;
    this.metrics = deps.metrics ?? new MirrorMetrics({ defaultMetrics: true });
    this.layout = new StorageLayout(config.mirror.storage.path);
    this.upstreams = new Upstreams(config, { logger: deps.logger, clock, metrics: this.metrics, env: deps.env ?? process.env });
    this.local = { blobs: new FsBlobStore(this.layout), manifests: new FsManifestStore(this.layout) };
    this.blobs = new ProxyBlobStore({ local: this.local.blobs, layout: this.layout, upstreams: this.upstreams, logger: deps.logger, metrics: this.metrics });
    this.manifests = new ProxyManifestStore({ local: this.local.manifests, upstreams: this.upstreams, clock, logger: deps.logger, metrics: this.metrics });
  }

  /** Checks storage, sweeps crash leftovers, listens. Resolves with the bound address. */
  async start(): Promise<{ url: string; host: string; port: number }> {
    await this.prepareStorage();
    const app = createMirrorApp({
      upstreams: this.upstreams,
      blobs: this.blobs,
      manifests: this.manifests,
      local: this.local.manifests,
      layout: this.layout,
      logger: this.deps.logger,
      metrics: this.metrics,
      isReady: () => this.ready,
      isStopping: () => this.stopping,
    });
    const tls = this.config.mirror.tls;
    const serverOptions: http.ServerOptions = {
      headersTimeout: this.config.mirror.headersTimeout,
      requestTimeout: 0, // blob downloads can legitimately take long; idle sockets are bounded by keepAliveTimeout
      keepAliveTimeout: 65_000,
      maxHeaderSize: 16 * 1024,
    };
    this.server = tls
      ? https.createServer({ ...serverOptions, cert: readFileSync(tls.cert), key: readFileSync(tls.key), minVersion: 'TLSv1.2' }, app)
      : http.createServer(serverOptions, app);
    const listen = parseListen(this.config.mirror.listen)!;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(listen.port, listen.host, () => {
        this.server!.off('error', reject);
        resolve();
      });
    });
    const addr = this.server.address() as AddressInfo;
    this.ready = true;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    const url = `${tls ? 'https' : 'http'}://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${addr.port}`;
    this.deps.logger.info(
      {
        listen: formatListen({ host: addr.address, port: addr.port }),
        tls: Boolean(tls),
        storage: this.layout.root,
        upstreams: Object.fromEntries(Object.entries(this.config.upstreams).map(([h, u]) => [h, u.url])),
      },
      `mirror listening on ${url}, mirroring ${this.upstreams.hosts.join(', ')}`,
    );
    return { url, host: addr.address, port: addr.port };
  }

  private async prepareStorage(): Promise<void> {
    const root = this.layout.root;
    try {
      await mkdir(root, { recursive: true });
      await access(root, constants.W_OK | constants.R_OK);
      const probe = path.join(root, `.write-probe-${randomBytes(4).toString('hex')}`);
      await writeFile(probe, 'ok');
      await rm(probe, { force: true });
    } catch (err) {
      throw new MirrorgateError('CONFIG_INVALID', `storage directory ${root} is not usable: ${(err as Error).message}`, { cause: err });
    }
    const swept = await sweepTempFiles(this.layout.tmpDir);
    if (swept > 0) this.deps.logger.warn({ swept }, 'removed temp files left by an earlier run');
  }

  /** Stops accepting connections and waits up to `graceMs` for in-flight requests, then closes the rest. */
  async stop(graceMs = this.config.mirror.shutdownGrace): Promise<void> {
    this.ready = false;
    this.stopping = true;
    const server = this.server;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections become idle as their requests finish: close them as they do.
      const sweeper = setInterval(() => server.closeIdleConnections(), 50);
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearInterval(sweeper);
      clearTimeout(timer);
      this.server = undefined;
    }
    await this.upstreams.close();
  }
}
