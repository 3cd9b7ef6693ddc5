import type { Clock } from '../../common/clock.js';
import type { AccessTarget } from '../auth/access.js';
import { accessKey } from '../cache/access-keys.js';
import { isHosted } from '../hosted/hosted-names.js';
import type { Repository } from '../repository/repository.js';
import { MANIFEST_MAX_BYTES, parseManifest, referencedDigests } from '../store/manifest-media.js';
import { readSmallContent } from '../store/small-content.js';
import type { Storage } from '../store/storage.js';
import type { RepositoryRef } from '../store/types.js';

/** Repositories listed at most; the rest are counted. */
export const MAX_REPOSITORIES = 500;
/** Tags listed per repository at most (the most recently used); the rest are counted. */
export const MAX_TAGS = 50;
/** A listing is reused this long, whoever asks: a page left open (or a script) costs one walk per period. */
const REUSE_MS = 10_000;
/** Stats and reads at once. */
const BATCH = 64;

export interface CachedTag {
  tag: string;
  digest: string;
  mediaType: string;
  /** Bytes stored for it: its manifest, the stored child manifests of an index, their blobs. */
  size: number;
  /** Epoch ms of its last use: a pull, a warm refresh (or its last write, when never used since). */
  lastUsed: number;
}

export interface CachedRepository {
  /** Hosted (pushed to the mirror) or proxied (cached from an upstream). */
  kind: Repository['kind'];
  /** As clients pull it (`library/nginx`, `ghcr.io/org/app`; a hosted repository's path). */
  name: string;
  upstream: string;
  path: string;
  /** The most recently used tags, at most MAX_TAGS. */
  tags: CachedTag[];
  tagCount: number;
  /** Stored manifests and blobs the repository holds, and their bytes (content shared with others counts in each). */
  manifests: number;
  blobs: number;
  size: number;
  lastUsed: number | undefined;
}

export interface CacheContents {
  /** Epoch ms of the walk. */
  at: number;
  /** Every repository held, as access rules see it; `repositories` details the first MAX_REPOSITORIES. */
  all: AccessTarget[];
  repositories: CachedRepository[];
}

export interface CacheContentsDeps {
  storage: Pick<Storage, 'blobs' | 'manifests' | 'metadata'>;
  /** Last use of an access-index key (the running mirror's tracker). */
  lastAccess(key: string): number | undefined;
  /** A repository's name as clients use it. */
  publicName(repo: RepositoryRef): string;
  clock: Clock;
}

/**
 * What the cache holds, for the status page: repositories, their tags with sizes and last use. Read from
 * the metadata and content stores directly (not through the local stores), so looking records no access
 * and keeps nothing warm. Bounded: MAX_REPOSITORIES, MAX_TAGS each, one walk per REUSE_MS at most.
 */
export class CacheContentsReader {
  private last: CacheContents | undefined;
  private running: Promise<CacheContents> | undefined;

  constructor(private readonly deps: CacheContentsDeps) {}

  read(): Promise<CacheContents> {
    if (this.last && this.deps.clock.now() - this.last.at < REUSE_MS) return Promise.resolve(this.last);
    this.running ??= this.walk()
      .then((c) => (this.last = c))
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private async walk(): Promise<CacheContents> {
    const at = this.deps.clock.now();
    const all = await this.deps.storage.metadata.listRepositories();
    const refs = new Map<string, string[]>();
    const repositories: CachedRepository[] = [];
    for (const repo of all.slice(0, MAX_REPOSITORIES)) repositories.push(await this.repository(repo, refs));
    return { at, all: all.map((r) => ({ kind: isHosted(r) ? 'hosted' : 'proxied', name: this.deps.publicName(r) })), repositories };
  }

  private async repository(repo: RepositoryRef, refs: Map<string, string[]>): Promise<CachedRepository> {
    const { metadata, blobs, manifests } = this.deps.storage;
    const [tags, manifestLinks, blobLinks] = await Promise.all([metadata.listTags(repo), metadata.listLinks(repo, 'manifest'), metadata.listLinks(repo, 'blob')]);
    const sizes = new Map<string, number>();
    const stat = async (store: typeof blobs, digests: string[]): Promise<number> => {
      let stored = 0;
      await inBatches(digests, async (d) => {
        const info = await store.stat(d);
        if (info) {
          sizes.set(d, info.size);
          stored++;
        }
      });
      return stored;
    };
    const manifestDigests = new Set(manifestLinks.map((l) => l.digest));
    const storedManifests = await stat(manifests, [...manifestDigests]);
    const storedBlobs = await stat(blobs, blobLinks.map((l) => l.digest));
    const lastUsedOf = (tag: string, digest: string, updatedAt: number): number =>
      Math.max(this.deps.lastAccess(accessKey.tag(repo, tag)) ?? updatedAt, this.deps.lastAccess(accessKey.manifest(digest)) ?? 0);
    const listed = tags
      .map((t) => ({ t, lastUsed: lastUsedOf(t.tag, t.record.digest, t.updatedAt) }))
      .sort((a, b) => b.lastUsed - a.lastUsed || (a.t.tag < b.t.tag ? -1 : 1))
      .slice(0, MAX_TAGS);
    const cachedTags: CachedTag[] = [];
    await inBatches(listed, async ({ t, lastUsed }) => {
      const closure = await this.closure(t.record.digest, refs, (d) => manifestDigests.has(d) && sizes.has(d));
      let size = 0;
      for (const d of closure) size += sizes.get(d) ?? 0;
      cachedTags.push({ tag: t.tag, digest: t.record.digest, mediaType: t.record.mediaType, size, lastUsed });
    });
    cachedTags.sort((a, b) => b.lastUsed - a.lastUsed || (a.tag < b.tag ? -1 : 1));
    let size = 0;
    for (const s of sizes.values()) size += s;
    const uses = [...listed.map((l) => l.lastUsed), ...manifestLinks.map((l) => this.deps.lastAccess(accessKey.manifest(l.digest)) ?? 0)].filter((n) => n > 0);
    return {
      kind: isHosted(repo) ? 'hosted' : 'proxied',
      name: this.deps.publicName(repo),
      upstream: repo.upstream,
      path: repo.path,
      tags: cachedTags,
      tagCount: tags.length,
      manifests: storedManifests,
      blobs: storedBlobs,
      size,
      lastUsed: uses.length > 0 ? Math.max(...uses) : undefined,
    };
  }

  /**
   * A manifest's digest and every digest it references, following child manifests (an index's) that are
   * stored. `refs` remembers what each manifest read references, across the walk.
   */
  private async closure(digest: string, refs: Map<string, string[]>, isStoredManifest: (d: string) => boolean): Promise<Set<string>> {
    const out = new Set<string>([digest]);
    const visit = async (d: string, depth: number): Promise<void> => {
      let direct = refs.get(d);
      if (!direct) {
        const bytes = await readSmallContent(this.deps.storage.manifests, d, MANIFEST_MAX_BYTES).catch(() => undefined);
        const doc = bytes && parseManifest(bytes);
        direct = doc ? referencedDigests(doc) : [];
        refs.set(d, direct);
      }
      for (const r of direct) {
        if (out.has(r)) continue;
        out.add(r);
        if (depth < 2 && isStoredManifest(r)) await visit(r, depth + 1);
      }
    };
    await visit(digest, 0);
    return out;
  }
}

async function inBatches<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += BATCH) await Promise.all(items.slice(i, i + BATCH).map(fn));
}
