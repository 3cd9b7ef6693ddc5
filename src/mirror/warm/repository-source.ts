import { finished } from 'node:stream/promises';
import { fail } from '../../common/errors.js';
import type { Repository } from '../repository/repository.js';
import { ALL_MANIFEST_TYPES } from '../store/manifest-media.js';
import type { RepositoryRef } from '../store/types.js';
import type { FetchedManifest, ImageSource } from './fetch-image.js';

/** What the warm fetch asks the cache beyond the repository's stores. */
export interface CacheProbe {
  /** Whether the repository holds the blob and it is stored: nothing to fetch. */
  isCached(repo: RepositoryRef, digest: string): Promise<boolean>;
  /** Resolves once a download of the blob running here has settled. */
  settled(digest: string): Promise<void>;
}

/**
 * An image fetched inside the mirror, through the repository's caching stores: the same code path as a
 * client's pull (tag revalidation, one shared download per blob, verification before anything is kept).
 */
export class RepositorySource implements ImageSource {
  constructor(
    private readonly repo: Repository,
    private readonly cache: CacheProbe,
  ) {}

  async manifest(reference: string): Promise<FetchedManifest> {
    const m = await this.repo.manifests.get(this.repo.ref, { reference, accept: ALL_MANIFEST_TYPES });
    if (!m) throw fail('MANIFEST_UNKNOWN', `manifest ${reference} unknown`);
    return m;
  }

  async blob(digest: string): Promise<void> {
    // A cached blob is not read: a refresh of a warm image costs no I/O beyond its manifests.
    if (await this.cache.isCached(this.repo.ref, digest)) return;
    const content = await this.repo.blobs.open(this.repo.ref, digest);
    if (!content) throw fail('BLOB_UNKNOWN', `blob ${digest} unknown`);
    // Read to the end (the last byte comes once the download is verified), then wait for its commit.
    content.body.resume();
    await finished(content.body);
    await this.cache.settled(digest);
    // Served without being stored (the storage is full): the image is not warm.
    if (!(await this.cache.isCached(this.repo.ref, digest))) throw fail('STORAGE_FULL', `blob ${digest} was fetched but could not be stored`);
  }
}
