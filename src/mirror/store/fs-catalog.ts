import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { StorageLayout } from './layout.js';
import type { RepositoryRef } from './types.js';

/**
 * Lists the repositories the cache holds by walking `repositories/`. A directory is a repository when it
 * has `_tags` or `_manifests`; the walk never follows names starting with `_`.
 */
export async function listCachedRepositories(layout: StorageLayout): Promise<RepositoryRef[]> {
  const out: RepositoryRef[] = [];
  let upstreams: string[];
  try {
    upstreams = await readdir(layout.repositoriesDir);
  } catch {
    return out;
  }
  for (const upstreamDir of upstreams.sort()) {
    const upstream = upstreamDir.replace(/_/g, ':');
    const walk = async (dir: string, parts: string[]): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      if (parts.length > 0 && entries.some((e) => e.isDirectory() && (e.name === '_tags' || e.name === '_manifests'))) {
        out.push({ upstream, path: parts.join('/') });
      }
      for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
        if (e.isDirectory() && !e.name.startsWith('_')) await walk(path.join(dir, e.name), [...parts, e.name]);
      }
    };
    await walk(path.join(layout.repositoriesDir, upstreamDir), []);
  }
  return out;
}
