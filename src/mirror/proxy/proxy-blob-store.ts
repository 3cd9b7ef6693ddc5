import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { MirrorMetrics } from '../metrics.js';
import type { FsBlobStore } from '../store/fs-blob-store.js';
import type { StorageLayout } from '../store/layout.js';
import type { BlobContent, BlobInfo, BlobStore, RangeRequest, RepositoryRef } from '../store/types.js';
import { header, release, type UpstreamResponse } from '../upstream/client.js';
import { upstreamFailure } from '../upstream/status.js';
import type { Upstreams } from '../upstream/upstreams.js';
import { BlobFetch } from './blob-fetch.js';
import { VerifyingSlice } from './direct-stream.js';
import { isStorageFull, type StorageFullState } from '../store/storage-full.js';
import { resolveRange } from '../store/range.js';
import type { Readable } from 'node:stream';

/** How many times a broken upstream transfer is resumed with a range request before giving up. */
const RESUME_ATTEMPTS = 3;

/**
 * The caching blob store: same interface as the local one. A hit is served from disk with no upstream
 * call; a miss starts (or joins) one upstream download that streams to every waiting client and into the
 * cache at once.
 */
export class ProxyBlobStore implements BlobStore {
  /** Downloads by digest, from the first request until the download settles (not just its headers). */
  private readonly fetches = new Map<string, Promise<BlobFetch | undefined>>();

  constructor(
    private readonly deps: {
      local: FsBlobStore;
      layout: StorageLayout;
      upstreams: Upstreams;
      logger: Logger;
      metrics?: MirrorMetrics;
      storageFull: StorageFullState;
    },
  ) {}

  /** Temp files of the downloads in progress (garbage collection leaves them alone). */
  private readonly tempPaths = new Set<string>();

  /** Downloads in progress, for shutdown and metrics. */
  get inflight(): number {
    return this.fetches.size;
  }

  /** Whether a download of this digest is running (eviction leaves the digest alone). */
  isFetching(digest: string): boolean {
    return this.fetches.has(digest);
  }

  /** Whether a running download is writing this temp file. */
  isWritingTemp(file: string): boolean {
    return this.tempPaths.has(file);
  }

  async stat(repo: RepositoryRef, digest: string): Promise<BlobInfo | undefined> {
    const local = await this.deps.local.stat(repo, digest);
    if (local) {
      this.deps.metrics?.cache.inc({ kind: 'blob', result: 'hit' });
      return local;
    }
    const running = this.fetches.get(digest);
    if (running) {
      const fetch = await running.catch(() => undefined);
      if (fetch?.size !== undefined) return { digest, size: fetch.size };
    }
    this.deps.metrics?.cache.inc({ kind: 'blob', result: 'miss' });
    const res = await this.upstreamBlob(repo, digest, 'HEAD');
    if (res.status === 404) {
      release(res.body);
      return undefined;
    }
    if (res.status !== 200) throw await upstreamFailure(res, 'BLOB_UNKNOWN', `blob ${digest}`, repo.upstream);
    release(res.body);
    const size = contentLength(res);
    if (size === undefined) throw new MirrorgateError('UPSTREAM_INVALID_CONTENT', `${repo.upstream} sent no size for blob ${digest}`);
    return { digest, size };
  }

  async open(repo: RepositoryRef, digest: string, range?: RangeRequest): Promise<BlobContent | undefined> {
    const local = await this.deps.local.open(repo, digest, range);
    if (local) {
      this.deps.metrics?.cache.inc({ kind: 'blob', result: 'hit' });
      return local;
    }
    const joined = this.fetches.has(digest);
    if (!joined && this.deps.storageFull.isFull) return this.direct(repo, digest, range);
    let fetch: BlobFetch | undefined;
    try {
      fetch = await this.fetchOnce(repo, digest);
    } catch (err) {
      if (err instanceof MirrorgateError && err.code === 'BLOB_UNKNOWN') return undefined;
      if (isStorageFull(err)) return this.direct(repo, digest, range);
      throw err;
    }
    // A download finished between our miss and our joining: it is on disk now.
    if (!fetch) return this.deps.local.open(repo, digest, range);
    this.deps.metrics?.cache.inc({ kind: 'blob', result: joined ? 'joined' : 'miss' });
    if (fetch.size === undefined && range) {
      // Size unknown until the download ends: wait for it, then serve the range from the cache.
      await fetch.done;
      return this.deps.local.open(repo, digest, range);
    }
    const resolved = fetch.resolve(range);
    const info = { digest, size: fetch.size ?? -1 };
    const body = fetch.follow(resolved);
    return resolved ? { info, body, range: resolved } : { info, body };
  }

  private fetchOnce(repo: RepositoryRef, digest: string): Promise<BlobFetch | undefined> {
    let p = this.fetches.get(digest);
    if (!p) {
      const started = this.start(repo, digest);
      p = started;
      this.fetches.set(digest, p);
      const release = (): void => {
        if (this.fetches.get(digest) === started) this.fetches.delete(digest);
      };
      started.then((f) => (f ? f.done.then(release, release) : release()), release);
    }
    return p;
  }

  /**
   * Starts the upstream download; resolves once the upstream has answered with the blob's headers, or with
   * undefined when the blob reached the cache since the caller looked (an entry is released only after
   * its blob is committed, so looking again here closes that window).
   */
  private async start(repo: RepositoryRef, digest: string): Promise<BlobFetch | undefined> {
    if (await this.deps.local.stat(repo, digest)) return undefined;
    const res = await this.upstreamBlob(repo, digest, 'GET');
    if (res.status !== 200) throw await upstreamFailure(res, 'BLOB_UNKNOWN', `blob ${digest}`, repo.upstream);
    const size = contentLength(res);
    let writer;
    try {
      writer = await this.deps.local.writer(digest);
    } catch (err) {
      release(res.body);
      if (isStorageFull(err)) this.markFull(err);
      throw err;
    }
    const resume = { attempts: RESUME_ATTEMPTS, from: (offset: number) => this.resumeFrom(repo, digest, offset) };
    const fetch = new BlobFetch(writer, res.body, { digest, size }, (d) => this.deps.layout.blobPath(d), this.deps.logger, resume);
    fetch.done.catch((err: unknown) => {
      if (err instanceof MirrorgateError && err.code === 'STORAGE_FULL') this.markFull(err);
      if (err instanceof MirrorgateError && err.code === 'UPSTREAM_INVALID_CONTENT') this.deps.metrics?.verificationFailures.inc({ upstream: repo.upstream, kind: 'blob' });
    });
    const metrics = this.deps.metrics;
    metrics?.inflightFetches.inc();
    const tempPath = writer.tempPath;
    this.tempPaths.add(tempPath);
    const settled = (): void => {
      metrics?.inflightFetches.dec();
      this.tempPaths.delete(tempPath);
    };
    fetch.done.then(settled, settled);
    return fetch;
  }

  /** The rest of a blob from `offset`, when the upstream honours range requests. */
  private async resumeFrom(repo: RepositoryRef, digest: string, offset: number): Promise<Readable | undefined> {
    const res = await this.upstreamBlob(repo, digest, 'GET', { range: `bytes=${offset}-` });
    const contentRange = header(res.headers, 'content-range');
    if (res.status === 206 && contentRange?.startsWith(`bytes ${offset}-`)) return res.body;
    release(res.body);
    return undefined;
  }

  /** One request for a blob to its repository's upstream (any status comes back; see `upstreamFailure`). */
  private upstreamBlob(repo: RepositoryRef, digest: string, method: 'GET' | 'HEAD', headers?: Record<string, string>): Promise<UpstreamResponse> {
    const path = `/v2/${repo.path}/blobs/${digest}`;
    return this.deps.upstreams.client(repo.upstream).request({ method, path, repository: repo.path, kind: 'blob', ...(headers ? { headers } : {}) });
  }

  private markFull(err: unknown): void {
    this.deps.storageFull.markFull();
    this.deps.logger.error({ err: (err as Error).message }, 'cache storage is full: serving cold blobs straight from upstreams, uncached');
  }

  /** Streams a blob from the upstream to one client without caching it, verified as it goes. */
  private async direct(repo: RepositoryRef, digest: string, range?: RangeRequest): Promise<BlobContent | undefined> {
    this.deps.metrics?.cache.inc({ kind: 'blob', result: 'uncached' });
    const res = await this.upstreamBlob(repo, digest, 'GET');
    if (res.status === 404) {
      release(res.body);
      return undefined;
    }
    if (res.status !== 200) throw await upstreamFailure(res, 'BLOB_UNKNOWN', `blob ${digest}`, repo.upstream);
    const size = contentLength(res);
    let resolved;
    try {
      resolved = range && size !== undefined ? resolveRange(range, size) : undefined;
    } catch (err) {
      release(res.body);
      throw err;
    }
    const slice = new VerifyingSlice(digest, size, resolved);
    res.body.on('error', (err) => slice.destroy(err));
    slice.once('error', (err) => {
      if (err instanceof MirrorgateError && err.code === 'UPSTREAM_INVALID_CONTENT') this.deps.metrics?.verificationFailures.inc({ upstream: repo.upstream, kind: 'blob' });
    });
    res.body.pipe(slice);
    const info = { digest, size: size ?? -1 };
    return resolved ? { info, body: slice, range: resolved } : { info, body: slice };
  }
}

/** The body size an upstream announced, when it announced a valid one. */
function contentLength(res: UpstreamResponse): number | undefined {
  const length = header(res.headers, 'content-length');
  return length !== undefined && /^\d{1,15}$/.test(length) ? Number(length) : undefined;
}
