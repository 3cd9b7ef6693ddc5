import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { MetadataStore } from '../metadata-store.js';
import type { Storage, StorageClaim, StorageHolder, StorageOwner } from '../storage.js';
import { S3Claims } from './s3-claims.js';
import { S3ContentStore } from './s3-content-store.js';
import { startupError } from './s3-errors.js';
import { S3Keys, describeLocation, type S3Location } from './s3-keys.js';
import { S3Objects } from './s3-objects.js';
import { s3Sdk } from './sdk.js';

export interface S3StorageOptions {
  location: S3Location;
  /** The endpoint, for messages (unset: AWS S3). */
  endpoint?: string;
  /** Bytes held in memory per write before they are stored as one part. */
  partSize: number;
  /**
   * Writes not written to for this long are swept by `prepare` (writes of other replicas sharing the
   * bucket are younger); those of upload sessions are kept.
   */
  staleWriteAgeMs: number;
  /** Blob GETs may be answered with a presigned URL valid this long (`mirror.storage.s3.redirect`); unset: never. */
  redirectTtlMs?: number;
}

/**
 * Content in an S3 bucket (two content stores: blobs and manifest bytes) with a metadata store beside it
 * (on a local directory, or one shared by replicas). Several mirrors may share the bucket.
 */
export class S3Storage implements Storage {
  readonly blobs: S3ContentStore;
  readonly manifests: S3ContentStore;
  readonly description: string;
  /**
   * Where a client may GET the blob itself (a presigned URL valid `redirectTtlMs`, for a `307`); set only
   * when redirects are configured, so that streaming storage makes no lookups for them.
   */
  readonly blobRedirectUrl?: (digest: string) => Promise<string | undefined>;
  private readonly keys: S3Keys;
  private readonly claims: S3Claims;

  constructor(
    private readonly s3: S3Client,
    readonly metadata: MetadataStore,
    private readonly opts: S3StorageOptions,
  ) {
    this.keys = new S3Keys(opts.location);
    const objects = new S3Objects(s3, opts.location.bucket);
    this.blobs = new S3ContentStore(objects, this.keys, 'blobs', { partSize: opts.partSize });
    this.manifests = new S3ContentStore(objects, this.keys, 'manifests', { partSize: opts.partSize });
    this.claims = new S3Claims(objects, this.keys, () => this.storeNow());
    this.description = describeLocation(opts.location, opts.endpoint);
    const ttl = opts.redirectTtlMs;
    if (ttl !== undefined) this.blobRedirectUrl = (digest) => this.blobs.presignedUrl(digest, ttl);
  }

  /**
   * Checks the bucket can be listed, written and deleted from (one clear error for a missing bucket,
   * refused keys, a clock too far off, missing permissions), then sweeps writes left long ago.
   */
  async prepare(): Promise<{ swept: number }> {
    const { bucket, prefix } = this.opts.location;
    try {
      await this.s3.send(new (s3Sdk().ListObjectsV2Command)({ Bucket: bucket, Prefix: prefix, MaxKeys: 1 }));
    } catch (err) {
      throw startupError(err, `${this.description}`);
    }
    const probe = this.keys.probeKey(randomBytes(8).toString('hex'));
    try {
      await this.s3.send(new (s3Sdk().PutObjectCommand)({ Bucket: bucket, Key: probe, Body: Buffer.from('ok'), ContentLength: 2 }));
      await this.s3.send(new (s3Sdk().DeleteObjectCommand)({ Bucket: bucket, Key: probe }));
    } catch (err) {
      throw startupError(err, `${this.description} (writing ${probe})`);
    }
    const uploads = new Set((await this.metadata.listUploads()).map((u) => u.writeId));
    const now = this.storeNow();
    let swept = 0;
    for (const store of [this.blobs, this.manifests]) {
      for (const w of await store.listWrites()) {
        if (now - w.modifiedAt < this.opts.staleWriteAgeMs || uploads.has(w.id)) continue;
        await store.deleteWrite(w.id);
        swept++;
      }
    }
    return { swept };
  }

  /** Object stores have no notion of free space the mirror could act on. */
  async freeSpace(): Promise<number | undefined> {
    return undefined;
  }

  claim(owner: StorageOwner, opts: { force?: boolean } = {}): Promise<StorageClaim> {
    return this.claims.claim(owner, opts);
  }

  holder(): Promise<StorageHolder | undefined> {
    return this.claims.holder();
  }

  /** Closes the client's connections. */
  async close(): Promise<void> {
    this.s3.destroy();
  }

  /** The store's time as far as we can tell: our clock, corrected by the skew the SDK measured. */
  private storeNow(): number {
    return Date.now() + (this.s3.config.systemClockOffset ?? 0);
  }
}
