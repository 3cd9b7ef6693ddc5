import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../../../src/common/clock.js';
import { silentLogger } from '../../../../src/common/logger.js';
import { configSchema } from '../../../../src/config/schema.js';
import { CacheManager } from '../../../../src/mirror/cache/cache-manager.js';
import { AccessTracker } from '../../../../src/mirror/cache/access-tracker.js';
import { FsStorage } from '../../../../src/mirror/store/fs/fs-storage.js';

/** The size cap as a metric, so an alert can compare the cache's size with it (docs/operations.md). */
describe('mirrorgate_cache_max_size_bytes', () => {
  const exported = async (storageConfig: Record<string, unknown>): Promise<number> => {
    const config = configSchema.parse({ mirror: { storage: { path: '/nonexistent/mirrorgate-cache', ...storageConfig } } }).mirror;
    const registry = new Registry();
    const storage = new FsStorage(config.storage.path, systemClock);
    new CacheManager(config, {
      storage,
      tracker: new AccessTracker(storage.metadata, { clock: systemClock, logger: silentLogger() }),
      clock: systemClock,
      logger: silentLogger(),
      registry,
      inflight: { isFetching: () => false, isWriting: () => false },
    });
    return (await registry.getSingleMetric('mirrorgate_cache_max_size_bytes')!.get()).values[0]!.value;
  };

  it('is mirror.storage.maxSize in bytes', async () => {
    expect(await exported({ maxSize: '45GiB' })).toBe(45 * 2 ** 30);
  });

  it('is 0 without a cap', async () => {
    expect(await exported({})).toBe(0);
  });
});
