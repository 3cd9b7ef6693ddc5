import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../../../src/common/clock.js';
import { silentLogger } from '../../../../src/common/logger.js';
import { configSchema } from '../../../../src/config/schema.js';
import { CacheManager } from '../../../../src/mirror/cache/cache-manager.js';
import { StorageLayout } from '../../../../src/mirror/store/layout.js';

/** The size cap as a metric, so an alert can compare the cache's size with it (docs/operations.md). */
describe('mirrorgate_cache_max_size_bytes', () => {
  const exported = async (storage: Record<string, unknown>): Promise<number> => {
    const config = configSchema.parse({ mirror: { storage: { path: '/nonexistent/mirrorgate-cache', ...storage } } }).mirror;
    const registry = new Registry();
    new CacheManager(config, {
      layout: new StorageLayout(config.storage.path),
      clock: systemClock,
      logger: silentLogger(),
      registry,
      inflight: { isFetching: () => false, isWritingTemp: () => false },
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
