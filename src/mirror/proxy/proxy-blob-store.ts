import { randomBytes } from 'node:crypto';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { LocalBlobStore } from '../local/local-blob-store.js';
import type { MirrorMetrics } from '../metrics.js';
import type { Lease, MetadataStore } from '../store/metadata-store.js';
import type { BlobContent, BlobInfo, BlobLocation, BlobStore, RangeRequest, RepositoryRef } from '../store/types.js';
import { contentLength, header, release, type UpstreamResponse } from '../upstream/client.js';
import { upstreamFailure } from '../upstream/status.js';
import type { Upstreams } from '../upstream/upstreams.js';
import { BlobFetch, WINDOW_BYTES, WRITES_IN_FLIGHT } from './blob-fetch.js';
import { DownloadBudget } from './download-budget.js';
import { VerifyingSlice } from './direct-stream.js';
import { isStorageFull, type StorageFullState } from '../store/storage-full.js';
import { resolveRange } from '../store/range.js';
import type { Readable } from 'node:stream';
import { Singleflight } from './singleflight.js';

/** How many times a broken upstream transfer is resumed with a range request before giving up. */
const RESUME_ATTEMPTS = 3;
/** A download's lease lasts this long unless renewed; it is renewed at a third of it while the download runs. */
const FETCH_LEASE_MS = 30_000;
/** How often a process that lost the race for a download looks whether the winner's blob has arrived. */
const LEASE_POLL_MS = 200;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A running download and the repository it was started for. */
interface RunningFetch {
  repo: RepositoryRef;
  fetch: Promise<BlobFetch | undefined>;
}

/**
 * The caching blob store: same interface as the local one, which it wraps. A blob the repository holds is
 * served from storage with no upstream call; a blob stored for another repository is served once this
 * repository's upstream has confirmed it holds it too (one HEAD, remembered); a miss starts (or joins) one
 * upstream download that streams to every waiting client and into the cache at once. Across processes
 * sharing a metadata store, a lease per digest lets one of them download while the others wait for it.
 */
export class ProxyBlobStore implements BlobStore {
  /** Downloads by digest, from the first request until the download settles (not just its headers). */
  private readonly fetches = new Map<string, RunningFetch>();
  private readonly confirms = new Singleflight<BlobInfo | undefined>();
  /** Content writes of the downloads in progress (the cache lifecycle leaves them alone). */
  private readonly writes = new Set<string>();
  /** Names this process as a lease holder. */
  private readonly holder = randomBytes(6).toString('hex');
  /** The downloads' windows and writes in flight share a bounded amount of memory. */
  private readonly budget = new DownloadBudget(WINDOW_BYTES, WRITES_IN_FLIGHT);

  constructor(
    private readonly deps: {
      local: LocalBlobStore;
      metadata: Pick<MetadataStore, 'acquireLease'>;
      upstreams: Upstreams;
      logger: Logger;
      metrics?: MirrorMetrics | undefined;
      storageFull: StorageFullState;
    },
  ) {}

  /** Downloads in progress, for shutdown and metrics. */
  get inflight(): number {
    return this.fetches.size;
  }

  /** Whether a download of this digest is running (eviction leaves the digest alone). */
  isFetching(digest: string): boolean {
    return this.fetches.has(digest);
  }

  /** Resolves once the download of this digest running in this process has settled (committed or failed); at once when none runs. */
  settled(digest: string): Promise<void> {
    const running = this.fetches.get(digest);
    if (!running) return Promise.resolve();
    return running.fetch.then((f) => f?.done).then(
      () => undefined,
      () => undefined,
    );
  }

  /** Whether a running download is writing this content write. */
  isWriting(writeId: string): boolean {
    return this.writes.has(writeId);
  }

  async stat(repo: RepositoryRef, digest: string): Promise<BlobInfo | undefined> {
    const { local } = this.deps;
    const [held, stored] = await Promise.all([local.holds(repo, digest), local.statContent(digest)]);
    if (stored) {
      if (!held && !(await this.confirm(repo, digest))) return undefined;
      this.deps.metrics?.cacheLookup('blob', 'hit');
      return stored;
    }
    const running = this.fetches.get(digest);
    if (running && sameRepo(running.repo, repo)) {
      const fetch = await running.fetch.catch(() => undefined);
      if (fetch?.size !== undefined) return { digest, size: fetch.size };
    }
    this.deps.metrics?.cacheLookup('blob', 'miss');
    return this.headUpstream(repo, digest);
  }

  async open(repo: RepositoryRef, digest: string, range?: RangeRequest): Promise<BlobContent | undefined> {
    const { local } = this.deps;
    if (await local.holds(repo, digest)) {
      const content = await local.openContent(digest, range);
      if (content) {
        this.deps.metrics?.cacheLookup('blob', 'hit');
        return content;
      }
    } else if (await local.statContent(digest)) {
      // Stored for another repository: served through this one only once its upstream says it has it.
      if (!(await this.confirm(repo, digest))) return undefined;
      const content = await local.openContent(digest, range);
      if (content) {
        this.deps.metrics?.cacheLookup('blob', 'hit');
        return content;
      }
    }
    const running = this.fetches.get(digest);
    // A download started for another repository is joined only once this repository's upstream confirmed the blob.
    if (running && !sameRepo(running.repo, repo) && !(await this.confirm(repo, digest))) return undefined;
    const joined = running !== undefined;
    if (!joined && this.deps.storageFull.isFull) return this.direct(repo, digest, range);
    let fetch: BlobFetch | undefined;
    try {
      fetch = await this.fetchOnce(repo, digest);
    } catch (err) {
      if (err instanceof MirrorgateError && err.code === 'BLOB_UNKNOWN') return undefined;
      if (isStorageFull(err)) return this.direct(repo, digest, range);
      throw err;
    }
    // Stored since we looked (a download here or in another process finished): this repository holds it
    // only if its upstream says so, as for any content stored for another repository.
    if (!fetch) {
      if (!(await local.holds(repo, digest)) && !(await this.confirm(repo, digest))) return undefined;
      return local.openContent(digest, range);
    }
    this.deps.metrics?.cacheLookup('blob', joined ? 'joined' : 'miss');
    if (fetch.size === undefined && range) {
      // Size unknown until the download ends: wait for it, then serve the range from the cache.
      await fetch.done;
      return local.openContent(digest, range);
    }
    const resolved = fetch.resolve(range);
    const info = { digest, size: fetch.size ?? -1 };
    const body = fetch.follow(resolved);
    return resolved ? { info, body, range: resolved } : { info, body };
  }

  /**
   * Where the bytes are of a blob the repository may serve and that is stored (held, or stored for another
   * repository and confirmed by this one's upstream); undefined for a cold blob, which `open` downloads and streams.
   */
  async locate(repo: RepositoryRef, digest: string): Promise<BlobLocation | undefined> {
    const { local } = this.deps;
    if (!local.redirects) return undefined;
    const [held, stored] = await Promise.all([local.holds(repo, digest), local.statContent(digest)]);
    if (!stored || (!held && !(await this.confirm(repo, digest)))) return undefined;
    const location = await local.locateContent(digest);
    if (location) this.deps.metrics?.cacheLookup('blob', 'hit');
    return location;
  }

  private fetchOnce(repo: RepositoryRef, digest: string): Promise<BlobFetch | undefined> {
    const running = this.fetches.get(digest);
    if (running) return running.fetch;
    const started = this.start(repo, digest);
    const entry = { repo, fetch: started };
    this.fetches.set(digest, entry);
    const release = (): void => {
      if (this.fetches.get(digest) === entry) this.fetches.delete(digest);
    };
    started.then((f) => (f ? f.done.then(release, release) : release()), release);
    return started;
  }

  /**
   * Starts the upstream download once this process holds the digest's lease; resolves once the upstream has
   * answered with the blob's headers, or with undefined when the blob reached storage since the caller
   * looked (downloaded by another process, or an entry released just after its commit).
   */
  private async start(repo: RepositoryRef, digest: string): Promise<BlobFetch | undefined> {
    const lease = await this.leaseOrStored(digest);
    if (!lease) return undefined;
    let fetch: BlobFetch;
    try {
      fetch = await this.download(repo, digest);
    } catch (err) {
      await lease.release();
      throw err;
    }
    const renew = setInterval(() => void lease.renew(FETCH_LEASE_MS), FETCH_LEASE_MS / 3);
    renew.unref();
    const settled = (): void => {
      clearInterval(renew);
      void lease.release();
    };
    fetch.done.then(async () => {
      await this.deps.local.hold(repo, digest);
      settled();
    }, settled);
    return fetch;
  }

  /** The digest's download lease, or undefined once the blob is stored (here, or by the lease's holder). */
  private async leaseOrStored(digest: string): Promise<Lease | undefined> {
    for (;;) {
      if (await this.deps.local.statContent(digest)) return undefined;
      const lease = await this.deps.metadata.acquireLease(`fetch:${digest}`, this.holder, FETCH_LEASE_MS);
      if (lease) {
        // Stored between the look and the lease: nothing to download.
        if (await this.deps.local.statContent(digest)) {
          await lease.release();
          return undefined;
        }
        return lease;
      }
      await sleep(LEASE_POLL_MS);
    }
  }

  private async download(repo: RepositoryRef, digest: string): Promise<BlobFetch> {
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
    const fetch = new BlobFetch(writer, res.body, { digest, size }, this.deps.logger, resume, this.budget);
    fetch.done.catch((err: unknown) => {
      if (err instanceof MirrorgateError && err.code === 'STORAGE_FULL') this.markFull(err);
      if (err instanceof MirrorgateError && err.code === 'UPSTREAM_INVALID_CONTENT') this.deps.metrics?.verificationFailures.inc({ upstream: repo.upstream, kind: 'blob' });
    });
    const metrics = this.deps.metrics;
    metrics?.inflightFetches.inc();
    const writeId = writer.id;
    this.writes.add(writeId);
    const settled = (): void => {
      metrics?.inflightFetches.dec();
      this.writes.delete(writeId);
    };
    fetch.done.then(settled, settled);
    return fetch;
  }

  /**
   * Whether the repository's upstream has the blob (one HEAD, shared by simultaneous callers); when it does,
   * the repository holds it from then on.
   */
  private confirm(repo: RepositoryRef, digest: string): Promise<BlobInfo | undefined> {
    return this.confirms.do(`${repo.upstream}/${repo.path}@${digest}`, async () => {
      const info = await this.headUpstream(repo, digest);
      if (info) await this.deps.local.hold(repo, digest);
      return info;
    });
  }

  /** Upstream HEAD of a blob: its size, or undefined when the upstream does not have it. */
  private async headUpstream(repo: RepositoryRef, digest: string): Promise<BlobInfo | undefined> {
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
    this.deps.metrics?.cacheLookup('blob', 'uncached');
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

function sameRepo(a: RepositoryRef, b: RepositoryRef): boolean {
  return a.upstream === b.upstream && a.path === b.path;
}
