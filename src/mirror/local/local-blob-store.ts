import type { AccessRecorder } from '../cache/access-tracker.js';
import type { ContentRead, ContentWriter } from '../store/content-store.js';
import type { Storage } from '../store/storage.js';
import type { BlobContent, BlobInfo, BlobLocation, BlobStore, RangeRequest, RepositoryRef } from '../store/types.js';

/**
 * Blobs as the local storage holds them, scoped to repositories: a blob is readable through a repository
 * only when the repository holds it (a link in the metadata store), though its bytes are stored once.
 * This is what a hosted repository serves, and what the caching store wraps for proxied ones.
 */
export class LocalBlobStore implements BlobStore {
  /** `access` (optional) is told of every read and every committed blob; it must not do I/O inline. */
  constructor(
    private readonly storage: Pick<Storage, 'blobs' | 'metadata' | 'blobRedirectUrl' | 'blobAccelPath'>,
    private readonly access?: AccessRecorder,
  ) {}

  async stat(repo: RepositoryRef, digest: string): Promise<BlobInfo | undefined> {
    const [held, info] = await Promise.all([this.holds(repo, digest), this.storage.blobs.stat(digest)]);
    if (!held || !info) return undefined;
    this.access?.blobRead(digest);
    return info;
  }

  async open(repo: RepositoryRef, digest: string, range?: RangeRequest): Promise<BlobContent | undefined> {
    if (!(await this.holds(repo, digest))) return undefined;
    return this.openContent(digest, range);
  }

  async locate(repo: RepositoryRef, digest: string): Promise<BlobLocation | undefined> {
    if (!this.redirects) return undefined;
    const [held, info] = await Promise.all([this.holds(repo, digest), this.storage.blobs.stat(digest)]);
    return held && info ? this.locateContent(digest) : undefined;
  }

  /** Whether the storage names places for blob bytes at all (no lookups are made for `locate` when it does not). */
  get redirects(): boolean {
    return this.storage.blobRedirectUrl !== undefined || this.storage.blobAccelPath !== undefined;
  }

  /** Where stored bytes are whichever repository holds them: for callers that checked the repository and the content first. */
  async locateContent(digest: string): Promise<BlobLocation | undefined> {
    const location = await this.placeOf(digest);
    if (location) this.access?.blobRead(digest);
    return location;
  }

  private async placeOf(digest: string): Promise<BlobLocation | undefined> {
    const { blobRedirectUrl, blobAccelPath } = this.storage;
    if (blobRedirectUrl) {
      const url = await blobRedirectUrl.call(this.storage, digest);
      return url === undefined ? undefined : { url };
    }
    const accelPath = await blobAccelPath?.call(this.storage, digest);
    return accelPath === undefined ? undefined : { accelPath };
  }

  holds(repo: RepositoryRef, digest: string): Promise<boolean> {
    return this.storage.metadata.isLinked(repo, 'blob', digest);
  }

  /** Records that the repository holds the blob (its upstream confirmed it, or it was stored through it). */
  hold(repo: RepositoryRef, digest: string): Promise<void> {
    return this.storage.metadata.link(repo, 'blob', digest);
  }

  /** The stored bytes whichever repository holds them: for callers that checked the repository first. */
  async statContent(digest: string): Promise<BlobInfo | undefined> {
    return this.storage.blobs.stat(digest);
  }

  async openContent(digest: string, range?: RangeRequest): Promise<ContentRead | undefined> {
    const content = await this.storage.blobs.open(digest, range);
    if (content) this.access?.blobRead(digest);
    return content;
  }

  async writer(digest: string): Promise<ContentWriter> {
    const writer = await this.storage.blobs.writer(digest);
    const access = this.access;
    if (access) writer.once('committed', () => access.stored('blob', digest, writer.written));
    return writer;
  }
}
