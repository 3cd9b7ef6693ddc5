import type { ContentStore } from '../content-store.js';
import type { Storage, StorageClaim, StorageHolder, StorageOwner } from '../storage.js';
import type { RedisMetadataStore } from './redis-metadata-store.js';

/** A storage whose metadata has Redis in front of it (RedisMetadataStore); the content is the base storage's. */
export class RedisStorage implements Storage {
  readonly blobs: ContentStore;
  readonly manifests: ContentStore;
  /** The base storage's blob URLs, when it hands them out. */
  readonly blobRedirectUrl?: (digest: string) => Promise<string | undefined>;
  /** The base storage's front-server paths, when it names them. */
  readonly blobAccelPath?: (digest: string) => Promise<string | undefined>;

  constructor(
    private readonly base: Storage,
    readonly metadata: RedisMetadataStore,
    /** Where Redis is, without credentials. */
    private readonly where: string,
  ) {
    this.blobs = base.blobs;
    this.manifests = base.manifests;
    if (base.blobRedirectUrl) this.blobRedirectUrl = base.blobRedirectUrl.bind(base);
    if (base.blobAccelPath) this.blobAccelPath = base.blobAccelPath.bind(base);
  }

  get description(): string {
    return `${this.base.description} (metadata cached in Redis at ${this.where})`;
  }

  async prepare(): Promise<{ swept: number }> {
    const swept = await this.base.prepare();
    await this.metadata.ready();
    return swept;
  }

  freeSpace(): Promise<number | undefined> {
    return this.base.freeSpace();
  }

  claim(owner: StorageOwner, opts?: { force?: boolean }): Promise<StorageClaim> {
    return this.base.claim(owner, opts);
  }

  holder(): Promise<StorageHolder | undefined> {
    return this.base.holder();
  }

  async close(): Promise<void> {
    await this.metadata.close();
    await this.base.close?.();
  }
}
