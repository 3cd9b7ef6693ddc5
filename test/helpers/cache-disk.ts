import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Content files (blobs or manifests) on disk: digest -> size. */
export function contentOnDisk(root: string, kind: 'blobs' | 'manifests'): Map<string, number> {
  const out = new Map<string, number>();
  const base = path.join(root, kind);
  if (!existsSync(base)) return out;
  for (const alg of readdirSync(base)) {
    for (const prefix of readdirSync(path.join(base, alg))) {
      for (const hex of readdirSync(path.join(base, alg, prefix))) out.set(`${alg}:${hex}`, statSync(path.join(base, alg, prefix, hex)).size);
    }
  }
  return out;
}

/** Bytes of blobs and manifests, what the size cap counts. */
export function cacheBytes(root: string): number {
  let total = 0;
  for (const kind of ['blobs', 'manifests'] as const) for (const size of contentOnDisk(root, kind).values()) total += size;
  return total;
}

/** Tag records of a repository on disk: tag -> digest. */
export function tagsOnDisk(root: string, repoDir: string): Map<string, string> {
  const dir = path.join(root, 'repositories', repoDir, '_tags');
  const out = new Map<string, string>();
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) out.set(name.replace(/\.json$/, ''), (JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as { digest: string }).digest);
  return out;
}

/** Digests a stored manifest references (config, layers, children). */
export function manifestRefs(root: string, digest: string): string[] {
  const [alg, hex] = digest.split(':') as [string, string];
  const doc = JSON.parse(readFileSync(path.join(root, 'manifests', alg, hex.slice(0, 2), hex), 'utf8')) as {
    config?: { digest: string };
    layers?: { digest: string }[];
    manifests?: { digest: string }[];
  };
  return [...(doc.config ? [doc.config.digest] : []), ...(doc.layers ?? []).map((l) => l.digest), ...(doc.manifests ?? []).map((m) => m.digest)];
}
