import path from 'node:path';
import type { LinkKind } from '../metadata-store.js';
import { checkRepository, checkTag, checkUploadId, digestParts } from '../names.js';
import type { RepositoryRef } from '../types.js';

/** The content stores' directories under the storage root. */
export type ContentKind = 'blobs' | 'manifests';

/**
 * Where things live under the storage root. Every path is derived from validated names and digests only,
 * so nothing a client sends can point outside the root.
 *
 *   blobs/<alg>/<hex[0:2]>/<hex>                       blob content (layers, configs)
 *   manifests/<alg>/<hex[0:2]>/<hex>                   manifest bytes, exactly as served upstream
 *   repositories/<upstream>/<path>/_tags/<tag>.json    tag records
 *   repositories/<upstream>/<path>/_manifests/<alg>/<hex>   this repository holds that manifest
 *   repositories/<upstream>/<path>/_blobs/<alg>/<hex>       this repository holds that blob
 *   repositories/<upstream>/<path>/_referrers/<alg>/<subject-hex>/<hex>.json   referrer descriptors
 *   state/access.json, state/lock, state/uploads/<id>.json  access times, the storage claim, upload sessions
 *   state/leases/<name>.json                           leases, when several processes share the storage
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

  get stateDir(): string {
    return path.join(this.root, 'state');
  }

  get accessIndexPath(): string {
    return path.join(this.stateDir, 'access.json');
  }

  /** Leases shared by the processes on the storage (the mirror's workers). */
  get leasesDir(): string {
    return path.join(this.stateDir, 'leases');
  }

  get lockPath(): string {
    return path.join(this.stateDir, 'lock');
  }

  uploadPath(id: string): string {
    checkUploadId(id);
    return path.join(this.stateDir, 'uploads', `${id}.json`);
  }

  get uploadsDir(): string {
    return path.join(this.stateDir, 'uploads');
  }

  contentDir(kind: ContentKind): string {
    return path.join(this.root, kind);
  }

  contentPath(kind: ContentKind, digest: string): string {
    const d = digestParts(digest);
    return path.join(this.root, kind, d.algorithm, d.hex.slice(0, 2), d.hex);
  }

  /** `<alg>/<hex[0:2]>/<hex>`, with `/` separators: where content sits under its kind's directory, as a URI path. */
  contentUriPath(digest: string): string {
    const d = digestParts(digest);
    return `${d.algorithm}/${d.hex.slice(0, 2)}/${d.hex}`;
  }

  blobPath(digest: string): string {
    return this.contentPath('blobs', digest);
  }

  manifestPath(digest: string): string {
    return this.contentPath('manifests', digest);
  }

  repositoryDir(repo: RepositoryRef): string {
    checkRepository(repo);
    return path.join(this.repositoriesDir, repo.upstream.replace(/:/g, '_'), ...repo.path.split('/'));
  }

  tagsDir(repo: RepositoryRef): string {
    return path.join(this.repositoryDir(repo), '_tags');
  }

  tagPath(repo: RepositoryRef, tag: string): string {
    checkTag(tag);
    return path.join(this.tagsDir(repo), `${tag}.json`);
  }

  linksDir(repo: RepositoryRef, kind: LinkKind): string {
    return path.join(this.repositoryDir(repo), kind === 'manifest' ? '_manifests' : '_blobs');
  }

  linkPath(repo: RepositoryRef, kind: LinkKind, digest: string): string {
    const d = digestParts(digest);
    return path.join(this.linksDir(repo, kind), d.algorithm, d.hex);
  }

  manifestLinkPath(repo: RepositoryRef, digest: string): string {
    return this.linkPath(repo, 'manifest', digest);
  }

  referrersRoot(repo: RepositoryRef): string {
    return path.join(this.repositoryDir(repo), '_referrers');
  }

  referrersDir(repo: RepositoryRef, subject: string): string {
    const d = digestParts(subject);
    return path.join(this.referrersRoot(repo), d.algorithm, d.hex);
  }

  referrerPath(repo: RepositoryRef, subject: string, digest: string): string {
    return path.join(this.referrersDir(repo, subject), `${digestParts(digest).hex}.json`);
  }
}
