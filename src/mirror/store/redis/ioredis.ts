import { createRequire } from 'node:module';
import type * as IORedis from 'ioredis';

const require = createRequire(import.meta.url);
let ioredis: typeof IORedis | undefined;

/** ioredis, loaded on first use (synchronously): processes without `mirror.redis` never load it (about 20 MB each). */
export function ioredisModule(): typeof IORedis {
  return (ioredis ??= require('ioredis') as typeof IORedis);
}
