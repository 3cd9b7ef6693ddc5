import { randomBytes } from 'node:crypto';
import type { MemoryLeases } from '../memory-leases.js';
import type { Lease } from '../metadata-store.js';
import { LuaScript } from './lua-script.js';
import { UNAVAILABLE, type RedisConnection } from './redis-connection.js';
import type { RedisKeys } from './redis-keys.js';

/** Extends the lease when this holder still has it, or takes it again when nobody does (lost with a flush or a restart). */
const RENEW = new LuaScript(`
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not current then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0`);

/** Deletes the lease only when this holder still has it. */
const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`);

/**
 * Leases every process on one Redis sees: `SET NX PX` with a token per holder, renewed and released only
 * by that token. Each is also taken in this process's memory, so the workers of one process exclude each
 * other with or without Redis. While Redis is down, the in-process lease alone is held: two processes may
 * then both do the work (fetch a cold blob twice), which is correct, only wasteful.
 */
export class RedisLeases {
  constructor(
    private readonly connection: RedisConnection,
    private readonly keys: RedisKeys,
    private readonly local: MemoryLeases,
  ) {}

  async acquire(name: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    const local = this.local.acquire(name, holder, ttlMs);
    if (!local) return undefined;
    const key = this.keys.lease(name);
    const token = `${randomBytes(9).toString('base64url')} ${holder}`;
    const taken = await this.connection.attempt('lease', (c) => c.set(key, token, 'PX', ttlMs, 'NX'));
    if (taken === null) {
      await local.release();
      return undefined;
    }
    return {
      name,
      holder,
      renew: async (ttl: number) => {
        if (!(await local.renew(ttl))) return false;
        const kept = await this.connection.attempt('lease', (c) => RENEW.run(c, [key], [token, ttl]));
        // Unanswered: held in this process, as without Redis.
        if (kept === UNAVAILABLE || kept === 1) return true;
        await local.release();
        return false;
      },
      release: async () => {
        await local.release();
        await this.connection.attempt('lease', (c) => RELEASE.run(c, [key], [token]));
      },
    };
  }
}
