import { createHash } from 'node:crypto';
import type { Clock } from '../../common/clock.js';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { parseDigest } from '../../reference/grammar.js';
import type { MirrorMetrics } from '../metrics.js';
import type { LocalManifestStore } from '../local/local-manifest-store.js';
import { ALL_MANIFEST_TYPES, MANIFEST_MAX_BYTES, manifestMediaType, validateManifest } from '../store/manifest-media.js';
import type { Manifest, ManifestDescriptor, ManifestRequest, ManifestStore, RepositoryRef, TagRecord } from '../store/types.js';
import { contentLength, header, release, type UpstreamResponse } from '../upstream/client.js';
import { isUpstreamOutage, upstreamFailure } from '../upstream/status.js';
import type { Upstreams } from '../upstream/upstreams.js';
import { readCapped } from './read-capped.js';
import { Singleflight } from './singleflight.js';
import { isStorageFull } from '../store/storage-full.js';

const ACCEPT_ALL = ALL_MANIFEST_TYPES.join(', ');

/**
 * The caching manifest store, wrapping the local one. Content addressed by digest that the repository holds
 * is served from storage with zero upstream calls; stored for another repository, once the repository's
 * upstream confirmed it with a HEAD. Tags are answered locally within their freshness window, then
 * revalidated with an upstream HEAD (free on Docker Hub's pull quota); a GET goes upstream only for content
 * the mirror does not hold. When the upstream is down or rate limiting, cached tags are served stale.
 */
export class ProxyManifestStore implements ManifestStore {
  private readonly gets = new Singleflight<Manifest>();
  private readonly heads = new Singleflight<ManifestDescriptor>();

  constructor(
    private readonly deps: {
      local: LocalManifestStore;
      upstreams: Upstreams;
      clock: Clock;
      logger: Logger;
      metrics?: MirrorMetrics;
    },
  ) {}

  async get(repo: RepositoryRef, request: ManifestRequest): Promise<Manifest | undefined> {
    const { local } = this.deps;
    if (parseDigest(request.reference)) {
      const digest = request.reference;
      const [held, m] = await Promise.all([local.holds(repo, digest), local.readManifest(digest)]);
      this.count('manifest', m ? 'hit' : 'miss');
      if (!m) return this.fetch(repo, digest);
      if (!held) await this.confirm(repo, digest, m);
      return m;
    }
    const tag = request.reference;
    const rec = await local.readTag(repo, tag);
    if (!rec) {
      this.count('tag', 'miss');
      const m = await this.fetch(repo, tag);
      await this.recordTag(repo, tag, m);
      return m;
    }
    if (this.isFresh(repo, rec)) {
      this.count('tag', 'hit');
      return (await local.readManifest(rec.digest)) ?? this.fetch(repo, rec.digest);
    }
    let current: ManifestDescriptor;
    try {
      current = await this.headUpstream(repo, tag);
    } catch (err) {
      return this.serveStale(repo, tag, rec, err);
    }
    this.count('tag', current.digest === rec.digest ? 'revalidated' : 'changed');
    const m = (await local.readManifest(current.digest)) ?? (await this.fetch(repo, current.digest));
    await this.recordTag(repo, tag, m);
    return m;
  }

  async stat(repo: RepositoryRef, request: ManifestRequest): Promise<ManifestDescriptor | undefined> {
    const { local } = this.deps;
    if (parseDigest(request.reference)) {
      const digest = request.reference;
      const [held, m] = await Promise.all([local.holds(repo, digest), local.readManifest(digest)]);
      this.count('manifest', m ? 'hit' : 'miss');
      if (!m) return this.headUpstream(repo, digest);
      if (!held) await this.confirm(repo, digest, m);
      return describe(m);
    }
    const tag = request.reference;
    const rec = await local.readTag(repo, tag);
    if (rec && this.isFresh(repo, rec)) {
      this.count('tag', 'hit');
      return { digest: rec.digest, mediaType: rec.mediaType, size: rec.size };
    }
    let current: ManifestDescriptor;
    try {
      current = await this.headUpstream(repo, tag);
    } catch (err) {
      if (!rec) throw err;
      const stale = await this.serveStale(repo, tag, rec, err);
      return describe(stale);
    }
    this.count('tag', rec ? (current.digest === rec.digest ? 'revalidated' : 'changed') : 'miss');
    // Remember what the tag points at, even though the content is fetched only when someone GETs it.
    await this.writeTag(repo, tag, { ...current, checkedAt: this.deps.clock.now() });
    return current;
  }

  /**
   * A manifest stored for another repository: this repository holds it only once its upstream says so (one
   * HEAD; MANIFEST_UNKNOWN, the upstream's answer, otherwise).
   */
  private async confirm(repo: RepositoryRef, digest: string, m: Manifest): Promise<void> {
    await this.headUpstream(repo, digest);
    await this.deps.local.hold(repo, digest, m);
  }

  private isFresh(repo: RepositoryRef, rec: TagRecord): boolean {
    const window = this.deps.upstreams.client(repo.upstream).freshness;
    return this.deps.clock.now() - rec.checkedAt < window;
  }

  private async serveStale(repo: RepositoryRef, tag: string, rec: TagRecord, err: unknown): Promise<Manifest> {
    const m = isUpstreamOutage(err) ? await this.deps.local.readManifest(rec.digest) : undefined;
    if (!m) throw err;
    this.count('tag', 'stale');
    this.deps.metrics?.staleServed.inc({ upstream: repo.upstream });
    this.deps.logger.warn({ upstream: repo.upstream, repository: repo.path, tag, digest: rec.digest, err: (err as Error).message }, 'upstream unavailable; serving cached tag past its freshness window');
    return m;
  }

  private async recordTag(repo: RepositoryRef, tag: string, m: Manifest): Promise<void> {
    await this.writeTag(repo, tag, { ...describe(m), checkedAt: this.deps.clock.now() });
  }

  /** A tag record is an optimisation: failing to write one (full disk) must not fail the request. */
  private async writeTag(repo: RepositoryRef, tag: string, record: TagRecord): Promise<void> {
    try {
      await this.deps.local.writeTag(repo, tag, record);
    } catch (err) {
      if (!isStorageFull(err)) throw err;
      this.deps.logger.error({ tag, err: (err as Error).message }, 'cache storage is full: tag not recorded');
    }
  }

  /** Upstream HEAD of a tag or digest; falls back to a GET when the upstream sends no digest. */
  private headUpstream(repo: RepositoryRef, reference: string): Promise<ManifestDescriptor> {
    return this.heads.do(`${repo.upstream}/${repo.path}:${reference}`, async () => {
      const res = await this.upstreamManifest(repo, reference, 'HEAD');
      release(res.body);
      const digest = header(res.headers, 'docker-content-digest');
      const size = contentLength(res);
      const contentType = header(res.headers, 'content-type')?.split(';')[0]?.trim();
      if (digest && parseDigest(digest) && size !== undefined && contentType) {
        if (parseDigest(reference) && digest !== reference) {
          this.deps.metrics?.verificationFailures.inc({ upstream: repo.upstream, kind: 'manifest' });
          throw new MirrorgateError('UPSTREAM_INVALID_CONTENT', `${repo.upstream} answered digest ${digest} for ${reference}`);
        }
        return { digest, size, mediaType: contentType };
      }
      return describe(await this.fetch(repo, reference));
    });
  }

  /** Upstream GET of a manifest, verified against the digest asked for or the one the upstream claims. */
  private fetch(repo: RepositoryRef, reference: string): Promise<Manifest> {
    return this.gets.do(`${repo.upstream}/${repo.path}@${reference}`, async () => {
      const res = await this.upstreamManifest(repo, reference, 'GET');
      const bytes = await readCapped(res.body, MANIFEST_MAX_BYTES, `manifest ${reference} from ${repo.upstream}`);
      const claimed = header(res.headers, 'docker-content-digest');
      const expected = parseDigest(reference) ? reference : claimed && parseDigest(claimed) ? claimed : undefined;
      const algorithm = expected ? expected.slice(0, expected.indexOf(':')) : 'sha256';
      const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
      if (expected && actual !== expected) {
        this.deps.metrics?.verificationFailures.inc({ upstream: repo.upstream, kind: 'manifest' });
        throw new MirrorgateError('UPSTREAM_INVALID_CONTENT', `manifest from ${repo.upstream} hashes to ${actual}, expected ${expected}; not stored`, {
          detail: { upstream: repo.upstream, reference },
        });
      }
      const contentType = header(res.headers, 'content-type');
      validateManifest(bytes, contentType);
      try {
        return await this.deps.local.putManifest(repo, actual, bytes, contentType ?? manifestMediaType(bytes));
      } catch (err) {
        if (!isStorageFull(err)) throw err;
        // Verified, just not storable: serve it anyway, the next request will try to cache it again.
        this.deps.logger.error({ digest: actual, err: (err as Error).message }, 'cache storage is full: manifest served without caching');
        return { digest: actual, mediaType: manifestMediaType(bytes, contentType), bytes };
      }
    });
  }

  /** A manifest request to the upstream, asking for every manifest type; anything but 200 becomes the client's error. */
  private async upstreamManifest(repo: RepositoryRef, reference: string, method: 'GET' | 'HEAD'): Promise<UpstreamResponse> {
    const res = await this.deps.upstreams.client(repo.upstream).request({
      method,
      path: `/v2/${repo.path}/manifests/${reference}`,
      repository: repo.path,
      kind: 'manifest',
      headers: { accept: ACCEPT_ALL },
    });
    if (res.status !== 200) throw await upstreamFailure(res, 'MANIFEST_UNKNOWN', `manifest ${reference}`, repo.upstream);
    return res;
  }

  private count(kind: 'manifest' | 'tag', result: string): void {
    this.deps.metrics?.cacheLookup(kind, result);
  }
}

function describe(m: Manifest): ManifestDescriptor {
  return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
}
