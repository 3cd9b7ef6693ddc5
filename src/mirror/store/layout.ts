import path from 'node:path';
import type { RepositoryRef } from './types.js';
import { parseDigest } from '../../reference/grammar.js';
import { fail } from '../../common/errors.js';

/**
 * Where things live under the storage root. Every path is derived from validated names and digests only,
 * so nothing a client sends can point outside the root.
 *
 *   blobs/<alg>/<hex[0:2]>/<hex>                       blob content (layers, configs)
 *   manifests/<alg>/<hex[0:2]>/<hex>                   manifest bytes, exactly as served upstream
 *   repositories/<upstream>/<path>/_tags/<tag>.json    tag records
 *   repositories/<upstream>/<path>/_manifests/<alg>/<hex>   this repository holds that manifest
 *   repositories/<upstream>/<path>/_referrers/<alg>/<subject-hex>/<hex>.json   referrer descriptors
 *   tmp/                                                writes in progress (swept at start-up)
 */
export class StorageLayout {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }

  get tmpDir(): string {
    return path.join(this.root, 'tmp');
  }

  get repositoriesDir(): string {
    return path.join(this.root, 'repositories');
  }

  blobPath(digest: string): string {
    return this.contentPath('blobs', digest);
  }

  manifestPath(digest: string): string {
    return this.contentPath('manifests', digest);
  }

  repositoryDir(repo: RepositoryRef): string {
    // Upstream keys and repository paths were validated against the reference grammar: no "..", no "/"
    // at the start, no percent-encoding. Check again here because this is where a path is built.
    if (!/^[a-z0-9.:[\]-]+$/.test(repo.upstream) || repo.upstream.startsWith('.') || repo.path.split('/').some((c) => !/^[a-z0-9]/.test(c))) {
      throw fail('NAME_INVALID', `invalid repository ${repo.upstream}/${repo.path}`);
    }
    return path.join(this.repositoriesDir, repo.upstream.replace(/:/g, '_'), ...repo.path.split('/'));
  }

  tagPath(repo: RepositoryRef, tag: string): string {
    return path.join(this.repositoryDir(repo), '_tags', `${tag}.json`);
  }

  manifestLinkPath(repo: RepositoryRef, digest: string): string {
    const d = this.digestParts(digest);
    return path.join(this.repositoryDir(repo), '_manifests', d.algorithm, d.hex);
  }

  referrersDir(repo: RepositoryRef, subject: string): string {
    const d = this.digestParts(subject);
    return path.join(this.repositoryDir(repo), '_referrers', d.algorithm, d.hex);
  }

  private contentPath(kind: 'blobs' | 'manifests', digest: string): string {
    const d = this.digestParts(digest);
    return path.join(this.root, kind, d.algorithm, d.hex.slice(0, 2), d.hex);
  }

  private digestParts(digest: string): { algorithm: string; hex: string } {
    const d = parseDigest(digest);
    if (!d) throw fail('DIGEST_INVALID', `invalid digest ${JSON.stringify(digest)}`);
    return d;
  }
}
