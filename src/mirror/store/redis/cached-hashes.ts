import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LuaScript } from './lua-script.js';

/*
 * A cached collection is one Redis hash: a field per record, plus two fields no record name can take (tags,
 * digests, upload ids and repository names never start with a dot):
 *   .complete  the hash holds every record of the durable store's collection, so a missing field means absent;
 *   .version   changed by every write, so a fill read from the durable store before a write cannot land after it.
 * A hash lives `ttl` from its creation (writes do not extend it): whatever a writer that crashed between its
 * durable write and its Redis write left stale is gone by then, read again from the durable store.
 */

const WRITE = new LuaScript(`
local key, mode = KEYS[1], ARGV[3]
if mode == 'del' then redis.call('HDEL', key, ARGV[4])
elseif mode == 'setnx' then redis.call('HSETNX', key, ARGV[4], ARGV[5])
elseif mode == 'reset' then redis.call('DEL', key)
else redis.call('HSET', key, ARGV[4], ARGV[5]) end
redis.call('HSET', key, '.version', ARGV[1])
if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[2]) end
return 1`);

const FILL_ONE = new LuaScript(`
local key = KEYS[1]
if (redis.call('HGET', key, '.version') or '') ~= ARGV[1] then return 0 end
redis.call('HSETNX', key, ARGV[3], ARGV[4])
if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[2]) end
return 1`);

const FILL_ALL = new LuaScript(`
local key = KEYS[1]
local version = redis.call('HGET', key, '.version')
if (version or '') ~= ARGV[1] then return 0 end
redis.call('DEL', key)
redis.call('HSET', key, '.complete', '1')
if version then redis.call('HSET', key, '.version', version) end
for i = 3, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', key, ARGV[2])
return 1`);

export type PointRead = { state: 'hit'; value: string } | { state: 'absent' } | { state: 'miss'; version: string };
export interface ListRead {
  /** Whether the entries are the whole collection. */
  complete: boolean;
  entries: Map<string, string>;
  version: string;
}

/** Most records a collection is filled with; a longer one is listed from the durable store each time. */
export const MAX_FILL = 10_000;

/** Collections cached as hashes (see above). Every method may reject when Redis fails; callers fall back. */
export class CachedHashes {
  constructor(
    private readonly client: Redis,
    private readonly ttlMs: number,
  ) {}

  async get(key: string, field: string): Promise<PointRead> {
    const [value, complete, version] = await this.client.hmget(key, field, '.complete', '.version');
    if (value !== null && value !== undefined) return { state: 'hit', value };
    return complete ? { state: 'absent' } : { state: 'miss', version: version ?? '' };
  }

  async list(key: string): Promise<ListRead> {
    const all = await this.client.hgetall(key);
    const entries = new Map<string, string>();
    for (const [field, value] of Object.entries(all)) if (!field.startsWith('.')) entries.set(field, value);
    return { complete: all['.complete'] === '1', entries, version: all['.version'] ?? '' };
  }

  /** Adds one record read from the durable store, unless the collection was written since `version` was read. */
  async fillOne(key: string, version: string, field: string, value: string): Promise<void> {
    await FILL_ONE.run(this.client, [key], [version, this.ttlMs, field, value]);
  }

  /** Replaces the collection with the durable store's listing and marks it complete (same condition). */
  async fillAll(key: string, version: string, entries: Iterable<[string, string]>): Promise<void> {
    const args: string[] = [];
    for (const [field, value] of entries) {
      if (args.length >= 2 * MAX_FILL) return;
      args.push(field, value);
    }
    await FILL_ALL.run(this.client, [key], [version, this.ttlMs, ...args]);
  }

  async set(key: string, field: string, value: string, opts: { ifAbsent?: boolean } = {}): Promise<void> {
    await WRITE.run(this.client, [key], [newVersion(), this.ttlMs, opts.ifAbsent ? 'setnx' : 'set', field, value]);
  }

  async delete(key: string, field: string): Promise<void> {
    await WRITE.run(this.client, [key], [newVersion(), this.ttlMs, 'del', field]);
  }

  /** Forgets the collection: the next read goes to the durable store, and no fill started before lands. */
  async reset(key: string): Promise<void> {
    await WRITE.run(this.client, [key], [newVersion(), this.ttlMs, 'reset']);
  }
}

function newVersion(): string {
  return randomBytes(9).toString('base64url');
}
