import type { ReferrersAnswer } from '../service/referrers.js';
import type { TagPage } from '../service/tags.js';
import type { PageRequest } from '../service/pagination.js';
import type { BlobStore, ManifestStore, RepositoryRef } from '../store/types.js';

/**
 * One repository as a request sees it, resolved by the router. A proxied repository mirrors a path at an
 * upstream: its stores are the caching ones, which wrap the local store. (Hosted repositories, which teams
 * push to, are the local store itself; they come with pushes.)
 */
export interface Repository {
  readonly kind: 'proxied';
  readonly ref: RepositoryRef;
  readonly blobs: BlobStore;
  readonly manifests: ManifestStore;
  listTags(page: PageRequest): Promise<TagPage>;
  listReferrers(subject: string, artifactType: string | undefined): Promise<ReferrersAnswer>;
}
