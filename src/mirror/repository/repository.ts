import type { HostedManifests } from '../hosted/hosted-manifests.js';
import type { LocalBlobStore } from '../local/local-blob-store.js';
import type { LocalManifestStore } from '../local/local-manifest-store.js';
import type { Uploads } from '../hosted/uploads.js';
import type { ReferrersAnswer } from '../service/referrers.js';
import type { TagPage } from '../service/tags.js';
import type { PageRequest } from '../service/pagination.js';
import type { BlobStore, ManifestStore, RepositoryRef } from '../store/types.js';

interface RepositoryReads {
  readonly ref: RepositoryRef;
  /** The name clients use for it. */
  readonly name: string;
  readonly blobs: BlobStore;
  readonly manifests: ManifestStore;
  listTags(page: PageRequest): Promise<TagPage>;
  listReferrers(subject: string, artifactType: string | undefined): Promise<ReferrersAnswer>;
}

/** A repository mirroring a path at an upstream: its stores are the caching ones, which wrap the local store. */
export interface ProxiedRepository extends RepositoryReads {
  readonly kind: 'proxied';
}

/** A repository teams push to: the local store itself, plus the push API. */
export interface HostedRepository extends RepositoryReads {
  readonly kind: 'hosted';
  readonly blobs: LocalBlobStore;
  readonly manifests: LocalManifestStore;
  readonly uploads: Uploads;
  readonly pushes: HostedManifests;
}

/** One repository as a request sees it, resolved by the router. */
export type Repository = ProxiedRepository | HostedRepository;
