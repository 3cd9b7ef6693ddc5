import type { Registry } from 'prom-client';
import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import type { MirrorConfig } from '../../config/schema.js';
import { FsStorage } from './fs/fs-storage.js';
import { createRedisClient, redactRedisUrl } from './redis/redis-client.js';
import { RedisMetadataStore } from './redis/redis-metadata-store.js';
import { RedisStorage } from './redis/redis-storage.js';
import type { Storage } from './storage.js';

export interface StorageDeps {
  clock: Clock;
  logger: Logger;
  /** Where the storage's own metrics go (Redis health). */
  registry: Registry;
  /** Where secrets given as `env` are read. */
  env: NodeJS.ProcessEnv;
}

/**
 * The storage the configuration names: the filesystem (the embedded default), with Redis in front of its
 * metadata when `mirror.redis` is set. The caller closes it (`close`) when done.
 */
export function createStorage(config: Pick<MirrorConfig, 'storage' | 'redis'>, deps: StorageDeps): Storage {
  const base = new FsStorage(config.storage.path, deps.clock);
  const redis = config.redis;
  if (!redis) return base;
  const client = createRedisClient(redis, deps.env);
  const metadata = new RedisMetadataStore(base.metadata, client, { keyPrefix: redis.keyPrefix, cacheTtlMs: redis.cacheTtl, connectTimeoutMs: redis.connectTimeout }, deps);
  return new RedisStorage(base, metadata, redactRedisUrl(redis.url));
}
