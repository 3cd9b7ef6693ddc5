import { parseDigest } from '../../reference/grammar.js';
import type { ContentStore } from '../store/content-store.js';
import { MANIFEST_MAX_BYTES, parseManifest, referencedDigests } from '../store/manifest-media.js';
import { readSmallContent } from '../store/small-content.js';
import type { Storage } from '../store/storage.js';
import type { RepositoryRef } from '../store/types.js';

/** A content item: a blob or a manifest. */
export interface ContentEntry {
  kind: 'blob' | 'manifest';
  digest: string;
  size: number;
  /** Epoch ms: when it reached the cache. */
  mtime: number;
}

export interface ManifestEntry extends ContentEntry {
  kind: 'manifest';
  /** Digests it points at: config, layers, child manifests (an index). */
  refs: string[];
}

export interface TagEntry {
  tag: string;
  digest: string;
  mtime: number;
}

export interface LinkTime {
  digest: string;
  mtime: number;
}

export interface RepositoryEntry {
  repo: RepositoryRef;
  tags: TagEntry[];
  /** Manifests the repository holds, with when it came to hold them. */
  links: LinkTime[];
  /** Blobs the repository holds. */
  blobLinks: LinkTime[];
  /** Referrer records: subject digest and referrer digest. */
  referrers: { subject: string; digest: string }[];
}

/** Everything the cache holds, read in one walk of the storage. */
export interface Inventory {
  blobs: Map<string, ContentEntry>;
  manifests: Map<string, ManifestEntry>;
  repositories: RepositoryEntry[];
}

const PAGE = 1000;
const READ_BATCH = 64;

/** Every item of a content store, a page at a time. */
async function* listAll(store: ContentStore): AsyncGenerator<{ digest: string; size: number; storedAt: number }> {
  let after: string | undefined;
  for (;;) {
    const page = await store.list(after === undefined ? { limit: PAGE } : { after, limit: PAGE });
    yield* page;
    if (page.length < PAGE) return;
    after = page[page.length - 1]!.digest;
  }
}

export async function scanInventory(storage: Pick<Storage, 'blobs' | 'manifests' | 'metadata'>): Promise<Inventory> {
  const blobs = new Map<string, ContentEntry>();
  for await (const b of listAll(storage.blobs)) blobs.set(b.digest, { kind: 'blob', digest: b.digest, size: b.size, mtime: b.storedAt });

  const manifests = new Map<string, ManifestEntry>();
  const listed = [];
  for await (const m of listAll(storage.manifests)) listed.push(m);
  for (let i = 0; i < listed.length; i += READ_BATCH) {
    await Promise.all(
      listed.slice(i, i + READ_BATCH).map(async (m) => {
        const bytes = await readSmallContent(storage.manifests, m.digest, MANIFEST_MAX_BYTES).catch(() => undefined);
        if (!bytes) return; // removed meanwhile
        const doc = parseManifest(bytes);
        const refs = doc ? referencedDigests(doc).filter((d) => typeof d === 'string' && parseDigest(d)) : [];
        manifests.set(m.digest, { kind: 'manifest', digest: m.digest, size: m.size, mtime: m.storedAt, refs });
      }),
    );
  }

  const { metadata } = storage;
  const repositories: RepositoryEntry[] = [];
  for (const repo of await metadata.listRepositories()) {
    const [tags, links, blobLinks, referrers] = await Promise.all([
      metadata.listTags(repo),
      metadata.listLinks(repo, 'manifest'),
      metadata.listLinks(repo, 'blob'),
      metadata.listAllReferrers(repo),
    ]);
    repositories.push({
      repo,
      tags: tags.map((t) => ({ tag: t.tag, digest: t.record.digest, mtime: t.updatedAt })),
      links: links.map((l) => ({ digest: l.digest, mtime: l.linkedAt })),
      blobLinks: blobLinks.map((l) => ({ digest: l.digest, mtime: l.linkedAt })),
      referrers: referrers.map((r) => ({ subject: r.subject, digest: r.descriptor.digest })),
    });
  }
  return { blobs, manifests, repositories };
}

/** Total bytes of content (blobs and manifests). Tag records and links are a few bytes each and not counted. */
export function contentBytes(inv: Inventory): number {
  let total = 0;
  for (const b of inv.blobs.values()) total += b.size;
  for (const m of inv.manifests.values()) total += m.size;
  return total;
}
