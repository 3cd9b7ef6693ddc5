import type { Clock } from '../../common/clock.js';
import type { MirrorConfig } from '../../config/schema.js';
import { FsMetadataStore } from './fs/fs-metadata-store.js';
import { FsStorage } from './fs/fs-storage.js';
import { StorageLayout } from './fs/layout.js';
import { createS3Client } from './s3/s3-client.js';
import { S3Storage } from './s3/s3-storage.js';
import type { Storage } from './storage.js';

/**
 * The storage the configuration names: the filesystem (the embedded default), or content in S3-compatible
 * object storage with the metadata on the filesystem under `storage.path`.
 */
export function createStorage(config: Pick<MirrorConfig, 'storage' | 'cache'>, clock: Clock, env: NodeJS.ProcessEnv = process.env): Storage {
  const s3 = config.storage.s3;
  if (!s3) return new FsStorage(config.storage.path, clock);
  return new S3Storage(createS3Client(s3, env), new FsMetadataStore(new StorageLayout(config.storage.path), clock), {
    location: { bucket: s3.bucket, prefix: s3.prefix },
    ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
    partSize: s3.partSize,
    staleWriteAgeMs: config.cache.staleTempAge,
    ...(s3.redirect ? { redirectTtlMs: s3.redirectTtl } : {}),
  });
}
