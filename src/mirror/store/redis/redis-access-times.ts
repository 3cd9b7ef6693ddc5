import { LuaScript } from './lua-script.js';
import { UNAVAILABLE, type RedisConnection } from './redis-connection.js';

/** Sets each field to the given time unless it holds a later one. */
const MERGE = new LuaScript(`
for i = 1, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > current then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1`);

/** Fields per script call or HDEL, so no single command holds Redis for long. */
const BATCH = 500;

/**
 * Access times in one Redis hash that every process merges into (newer wins), so each process's cache
 * lifecycle can see what the others served. Only what changed since the last save is sent; everything is
 * sent again once Redis comes back from an outage.
 */
export class RedisAccessTimes {
  /** Times as Redis last took them from this process. */
  private sent = new Map<string, number>();
  /** Keys to drop from Redis that it has not taken yet. */
  private pendingForget = new Set<string>();

  constructor(
    private readonly connection: RedisConnection,
    private readonly key: string,
  ) {
    connection.onUp(() => (this.sent = new Map()));
  }

  async load(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const read = await this.connection.attempt('read', async (c) => {
      let cursor = '0';
      do {
        const [next, flat] = await c.hscan(this.key, cursor, 'COUNT', 1000);
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const v = Number(flat[i + 1]);
          if (Number.isFinite(v)) out.set(flat[i]!, v);
        }
        cursor = next;
      } while (cursor !== '0');
    });
    return read === UNAVAILABLE ? new Map() : out;
  }

  async save(times: ReadonlyMap<string, number>, forgotten: readonly string[]): Promise<void> {
    const dropped = new Set(forgotten);
    // A key dropped by an earlier save that Redis did not take, and used again since, stays.
    for (const k of this.pendingForget) if (times.has(k) && !dropped.has(k)) this.pendingForget.delete(k);
    for (const k of dropped) {
      this.pendingForget.add(k);
      this.sent.delete(k);
    }
    const changed: [string, number][] = [];
    for (const [k, v] of times) if (v > (this.sent.get(k) ?? 0) && !dropped.has(k)) changed.push([k, v]);
    const forget = [...this.pendingForget];
    const done = await this.connection.attempt('write', async (c) => {
      for (let i = 0; i < forget.length; i += BATCH) await c.hdel(this.key, ...forget.slice(i, i + BATCH));
      for (let i = 0; i < changed.length; i += BATCH) await MERGE.run(c, [this.key], changed.slice(i, i + BATCH).flat());
    });
    if (done === UNAVAILABLE) return;
    for (const k of forget) this.pendingForget.delete(k);
    for (const [k, v] of changed) if (v > (this.sent.get(k) ?? 0)) this.sent.set(k, v);
  }
}
