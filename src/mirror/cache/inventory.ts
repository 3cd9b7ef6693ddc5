import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseDigest } from '../../reference/grammar.js';
import { listCachedRepositories } from '../store/fs-catalog.js';
import type { StorageLayout } from '../store/layout.js';
import { parseManifest, referencedDigests } from '../store/manifest-media.js';
import type { RepositoryRef } from '../store/types.js';

/** A content file: a blob or a manifest. */
export interface ContentEntry {
  kind: 'blob' | 'manifest';
  digest: string;
  size: number;
  /** File mtime, epoch ms: when it reached the cache. */
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

export interface RepositoryEntry {
  repo: RepositoryRef;
  tags: TagEntry[];
  /** Manifests linked into the repository, with the link's mtime. */
  links: { digest: string; mtime: number }[];
  /** Referrer descriptor files: subject digest and referrer digest. */
  referrers: { subject: string; digest: string; file: string }[];
}

/** Everything the cache holds, read in one walk of the storage directory. */
export interface Inventory {
  blobs: Map<string, ContentEntry>;
  manifests: Map<string, ManifestEntry>;
  repositories: RepositoryEntry[];
}

const STAT_BATCH = 64;

/** Runs `fn` over `items`, at most STAT_BATCH at a time. */
async function batched<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += STAT_BATCH) out.push(...(await Promise.all(items.slice(i, i + STAT_BATCH).map(fn))));
  return out;
}

async function dirNames(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
}

/** `<base>/<alg>/<2hex>/<hex>` -> digests with their file paths. */
async function contentFiles(base: string): Promise<{ digest: string; file: string }[]> {
  const out: { digest: string; file: string }[] = [];
  for (const alg of await dirNames(base)) {
    for (const prefix of await dirNames(path.join(base, alg))) {
      for (const hex of await dirNames(path.join(base, alg, prefix))) {
        const digest = `${alg}:${hex}`;
        if (hex.startsWith(prefix) && parseDigest(digest)) out.push({ digest, file: path.join(base, alg, prefix, hex) });
      }
    }
  }
  return out;
}

async function statOrUndefined(file: string): Promise<{ size: number; mtimeMs: number } | undefined> {
  try {
    return await stat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function scanInventory(layout: StorageLayout): Promise<Inventory> {
  const blobs = new Map<string, ContentEntry>();
  const blobFiles = await contentFiles(path.join(layout.root, 'blobs'));
  await batched(blobFiles, async ({ digest, file }) => {
    const s = await statOrUndefined(file);
    if (s) blobs.set(digest, { kind: 'blob', digest, size: s.size, mtime: s.mtimeMs });
  });

  const manifests = new Map<string, ManifestEntry>();
  const manifestFiles = await contentFiles(path.join(layout.root, 'manifests'));
  await batched(manifestFiles, async ({ digest, file }) => {
    const s = await statOrUndefined(file);
    if (!s) return;
    const bytes = await readFile(file).catch(() => undefined);
    if (!bytes) return;
    const doc = parseManifest(bytes);
    const refs = doc ? referencedDigests(doc).filter((d) => typeof d === 'string' && parseDigest(d)) : [];
    manifests.set(digest, { kind: 'manifest', digest, size: s.size, mtime: s.mtimeMs, refs });
  });

  const repositories: RepositoryEntry[] = [];
  for (const repo of await listCachedRepositories(layout)) {
    const dir = layout.repositoryDir(repo);
    const tagNames = (await dirNames(path.join(dir, '_tags'))).filter((n) => n.endsWith('.json'));
    const tags = (
      await batched(tagNames, async (name): Promise<TagEntry | undefined> => {
        const file = path.join(dir, '_tags', name);
        try {
          const [text, s] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
          const rec = JSON.parse(text) as { digest?: unknown };
          if (typeof rec.digest !== 'string' || !parseDigest(rec.digest)) return undefined;
          return { tag: name.slice(0, -5), digest: rec.digest, mtime: s.mtimeMs };
        } catch {
          return undefined; // vanished or torn: the proxy treats it as absent too
        }
      })
    ).filter((t): t is TagEntry => t !== undefined);

    const linkFiles: { digest: string; file: string }[] = [];
    for (const alg of await dirNames(path.join(dir, '_manifests'))) {
      for (const hex of await dirNames(path.join(dir, '_manifests', alg))) {
        const digest = `${alg}:${hex}`;
        if (parseDigest(digest)) linkFiles.push({ digest, file: path.join(dir, '_manifests', alg, hex) });
      }
    }
    const links = (await batched(linkFiles, async ({ digest, file }) => {
      const s = await statOrUndefined(file);
      return s && { digest, mtime: s.mtimeMs };
    })).filter((l): l is { digest: string; mtime: number } => l !== undefined);

    const referrers: RepositoryEntry['referrers'] = [];
    for (const alg of await dirNames(path.join(dir, '_referrers'))) {
      for (const subjectHex of await dirNames(path.join(dir, '_referrers', alg))) {
        for (const name of await dirNames(path.join(dir, '_referrers', alg, subjectHex))) {
          if (!name.endsWith('.json')) continue;
          referrers.push({ subject: `${alg}:${subjectHex}`, digest: `${alg}:${name.slice(0, -5)}`, file: path.join(dir, '_referrers', alg, subjectHex, name) });
        }
      }
    }
    repositories.push({ repo, tags, links, referrers });
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
