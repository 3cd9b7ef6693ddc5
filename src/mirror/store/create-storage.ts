import type { Registry } from 'prom-client';
import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import type { MirrorConfig } from '../../config/schema.js';
import { FsStorage } from './fs/fs-storage.js';
import { createRedisClient, redactRedisUrl } from './redis/redis-client.js';
import { RedisMetadataStore } from './redis/redis-metadata-store.js';
import { RedisStorage } from './redis/redis-storage.js';
import { createS3Client } from './s3/s3-client.js';
import { S3MetadataStore } from './s3/s3-metadata-store.js';
import { S3Objects } from './s3/s3-objects.js';
import { S3Storage } from './s3/s3-storage.js';
import type { Storage } from './storage.js';

export interface StorageDeps {
  clock: Clock;
  logger: Logger;
  /** Where the storage's own metrics go (Redis health). */
  registry: Registry;
  /** Where secrets given as `env` are read. */
  env: NodeJS.ProcessEnv;
  /** Served by several processes at once (the mirror's workers): see FsStorage. */
  shared?: boolean;
}

/**
 * The storage the configuration names: content on the filesystem (the embedded default) or in S3-compatible
 * object storage (`storage.s3`), with Redis in front of the metadata when `mirror.redis` is set. Metadata is
 * beside the content: under `storage.path`, or in the bucket, where every replica sharing it reads the same
 * records (hosted repositories' exist nowhere else, and each cache pass must see every replica's
 * references). The caller closes it (`close`) when done.
 */
export function createStorage(config: Pick<MirrorConfig, 'storage' | 'redis' | 'cache'>, deps: StorageDeps): Storage {
  const s3 = config.storage.s3;
  let base: Storage;
  if (s3) {
    const client = createS3Client(s3, deps.env);
    const metadata = new S3MetadataStore(new S3Objects(client, s3.bucket), s3.prefix, deps.clock);
    base = new S3Storage(client, metadata, {
      location: { bucket: s3.bucket, prefix: s3.prefix },
      ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
      partSize: s3.partSize,
      staleWriteAgeMs: config.cache.staleTempAge,
      ...(s3.redirect ? { redirectTtlMs: s3.redirectTtl } : {}),
    });
  } else {
    const accel = config.storage.accelRedirect;
    base = new FsStorage(config.storage.path, deps.clock, { shared: deps.shared ?? false, ...(accel ? { accelPrefix: accel.prefix } : {}) });
  }
  const redis = config.redis;
  if (!redis) return base;
  const client = createRedisClient(redis, deps.env);
  const metadata = new RedisMetadataStore(base.metadata, client, { keyPrefix: redis.keyPrefix, cacheTtlMs: redis.cacheTtl, connectTimeoutMs: redis.connectTimeout }, deps);
  return new RedisStorage(base, metadata, redactRedisUrl(redis.url));
}
