import type { LinkKind } from '../metadata-store.js';
import { checkRepository } from '../names.js';
import type { RepositoryRef } from '../types.js';

/**
 * Every key the mirror uses in Redis, under one prefix:
 *   <prefix>c:...        cached collections (hashes; see cached-hashes.ts), all of which can be dropped at any time
 *   <prefix>lease:<name> leases (a holder's token, with the lease's expiry)
 *   <prefix>access       access times (a hash: access key -> epoch ms)
 *   <prefix>server       the Redis server run id the cache was built on (see RedisConnection)
 * Repository names are checked before a key is built from them.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  tags(repo: RepositoryRef): string {
    return `${this.prefix}c:tags:${repositoryField(repo)}`;
  }

  links(repo: RepositoryRef, kind: LinkKind): string {
    return `${this.prefix}c:${kind === 'manifest' ? 'manifests' : 'blobs'}:${repositoryField(repo)}`;
  }

  referrers(repo: RepositoryRef): string {
    return `${this.prefix}c:referrers:${repositoryField(repo)}`;
  }

  get catalog(): string {
    return `${this.prefix}c:catalog`;
  }

  get uploads(): string {
    return `${this.prefix}c:uploads`;
  }

  /** Matches every cached collection (for SCAN), and nothing else of the mirror's. */
  get cachePattern(): string {
    return `${escapeGlob(this.prefix)}c:*`;
  }

  lease(name: string): string {
    return `${this.prefix}lease:${name}`;
  }

  get access(): string {
    return `${this.prefix}access`;
  }

  get server(): string {
    return `${this.prefix}server`;
  }
}

/** `upstream/path`: unambiguous, since an upstream key has no slash. */
export function repositoryField(repo: RepositoryRef): string {
  checkRepository(repo);
  return `${repo.upstream}/${repo.path}`;
}

export function parseRepositoryField(field: string): RepositoryRef | undefined {
  const slash = field.indexOf('/');
  if (slash <= 0) return undefined;
  const repo = { upstream: field.slice(0, slash), path: field.slice(slash + 1) };
  try {
    checkRepository(repo);
  } catch {
    return undefined;
  }
  return repo;
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}
