import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { StorageLayout, type ContentKind } from '../../src/mirror/store/fs/layout.js';
import type { RepositoryRef } from '../../src/mirror/store/types.js';

/** What tests read straight off a filesystem storage, through the product's own layout. */

/** Content files (blobs or manifests) on disk: digest -> size. */
export function contentOnDisk(root: string, kind: ContentKind): Map<string, number> {
  const out = new Map<string, number>();
  const base = new StorageLayout(root).contentDir(kind);
  if (!existsSync(base)) return out;
  for (const alg of readdirSync(base)) {
    for (const prefix of readdirSync(path.join(base, alg))) {
      for (const hex of readdirSync(path.join(base, alg, prefix))) out.set(`${alg}:${hex}`, statSync(path.join(base, alg, prefix, hex)).size);
    }
  }
  return out;
}

/** The file holding a blob. */
export function blobFile(root: string, digest: string): string {
  return new StorageLayout(root).blobPath(digest);
}

/** Every content file holds exactly the bytes its name says; returns how many were checked. */
export function checkContentFiles(root: string, kind: ContentKind = 'blobs'): { checked: number; wrong: string[] } {
  const layout = new StorageLayout(root);
  const wrong: string[] = [];
  let checked = 0;
  for (const digest of contentOnDisk(root, kind).keys()) {
    const [alg] = digest.split(':') as [string];
    const actual = `${alg}:${createHash(alg).update(readFileSync(layout.contentPath(kind, digest))).digest('hex')}`;
    if (actual !== digest) wrong.push(digest);
    checked++;
  }
  return { checked, wrong };
}

/** Writes in progress (or left behind) in the storage's temp directory. */
export function tempFiles(root: string): string[] {
  const dir = new StorageLayout(root).tmpDir;
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** Bytes of blobs and manifests, what the size cap counts. */
export function cacheBytes(root: string): number {
  let total = 0;
  for (const kind of ['blobs', 'manifests'] as const) for (const size of contentOnDisk(root, kind).values()) total += size;
  return total;
}

/** Tag records of a repository on disk: tag -> digest. */
export function tagsOnDisk(root: string, repo: RepositoryRef): Map<string, string> {
  const dir = new StorageLayout(root).tagsDir(repo);
  const out = new Map<string, string>();
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) out.set(name.replace(/\.json$/, ''), (JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as { digest: string }).digest);
  return out;
}

/** Digests a stored manifest references (config, layers, children). */
export function manifestRefs(root: string, digest: string): string[] {
  const doc = JSON.parse(readFileSync(new StorageLayout(root).manifestPath(digest), 'utf8')) as {
    config?: { digest: string };
    layers?: { digest: string }[];
    manifests?: { digest: string }[];
  };
  return [...(doc.config ? [doc.config.digest] : []), ...(doc.layers ?? []).map((l) => l.digest), ...(doc.manifests ?? []).map((m) => m.digest)];
}
