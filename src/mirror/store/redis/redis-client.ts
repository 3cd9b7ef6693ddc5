import type { Redis } from 'ioredis';
import { ioredisModule } from './ioredis.js';
import type { MirrorRedisConfig } from '../../../config/schema.js';
import { readSecret } from '../../upstream/credentials.js';

/**
 * An ioredis client that fails fast instead of queueing: no offline queue, no resending of commands cut by
 * a disconnect, a timeout on every command. A slow or gone Redis then costs one timeout, after which the
 * mirror works without it (see RedisConnection); ioredis keeps reconnecting in the background.
 */
export function createRedisClient(config: MirrorRedisConfig, env: NodeJS.ProcessEnv): Redis {
  const password = config.password ? readSecret(config.password, env) : undefined;
  return new (ioredisModule().Redis)(config.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    // Commands issued in the same tick (the links of one manifest) go in one round trip.
    enableAutoPipelining: true,
    connectTimeout: config.connectTimeout,
    commandTimeout: config.commandTimeout,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
    ...(config.username !== undefined ? { username: config.username } : {}),
    ...(password !== undefined ? { password } : {}),
  });
}

/** The URL without its password, for logs. */
export function redactRedisUrl(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = 'redacted';
  return u.toString();
}
