import type { Redis } from 'ioredis';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../../../common/logger.js';
import type { CachedHashes } from './cached-hashes.js';
import type { RedisKeys } from './redis-keys.js';

/** What a call gets back when Redis was not asked or did not answer: the caller does without it. */
export const UNAVAILABLE: unique symbol = Symbol('redis unavailable');
export type Unavailable = typeof UNAVAILABLE;

export type RedisOperation = 'read' | 'write' | 'lease';

/** Most keys remembered for invalidation while Redis is down; past it, the whole cache is dropped on recovery. */
const MAX_MISSED = 10_000;

export interface RedisConnectionDeps {
  keys: RedisKeys;
  hashes: CachedHashes;
  logger: Logger;
  registry: Registry;
  /** How long the first connection may take; calls made meanwhile wait for it. */
  connectTimeoutMs: number;
  /** How often to look whether Redis answers again while it is down. */
  probeIntervalMs?: number;
}

/**
 * Whether Redis is usable, and what to do when it is not. Up: calls go to Redis; a call that fails marks it
 * down (one warning per outage, `mirrorgate_redis_up` 0). Down: calls are not even tried (each counts in
 * `mirrorgate_redis_fallbacks_total`) and callers do without Redis, until a probe finds it answering again.
 * Before it is used again, what it may hold stale is dropped: the cached collections this process wrote to
 * the durable store alone while it was down, and the whole cache when the server is another one than it was
 * built on (a restart that restored an old snapshot, a failover).
 */
export class RedisConnection {
  private state: 'starting' | 'up' | 'down' | 'closed' = 'starting';
  private readonly upGauge: Gauge;
  private readonly fallbacks: Counter<'operation'>;
  private readonly missed = new Set<string>();
  private missedOverflow = false;
  /** Counts transitions to down, so a repair knows whether Redis was lost again while it ran. */
  private outages = 0;
  private recovering: Promise<boolean> | undefined;
  private probe: NodeJS.Timeout | undefined;
  private readonly upListeners = new Set<() => void>();
  private started: Promise<void> | undefined;

  constructor(
    readonly client: Redis,
    private readonly deps: RedisConnectionDeps,
  ) {
    const registers = [deps.registry];
    this.upGauge = new Gauge({ name: 'mirrorgate_redis_up', help: 'Whether Redis answers (1) or the mirror runs without it (0)', registers });
    this.fallbacks = new Counter({
      name: 'mirrorgate_redis_fallbacks_total',
      help: 'Metadata operations done without Redis because it was down, by operation (read, write, lease)',
      labelNames: ['operation'],
      registers,
    });
    this.upGauge.set(0);
    // ioredis reconnects by itself; these only track it. An 'error' listener is required, or ioredis logs each one.
    client.on('error', () => undefined);
    client.on('close', () => this.markDown(new Error('connection closed')));
    client.on('ready', () => void this.recover());
  }

  get up(): boolean {
    return this.state === 'up';
  }

  /**
   * Connects (on the first call) and waits, at most the connect timeout, for Redis to be usable. Never
   * rejects: without Redis the mirror runs on.
   */
  ready(): Promise<void> {
    this.started ??= this.connect();
    return this.started;
  }

  private async connect(): Promise<void> {
    this.startProbing();
    this.client.connect().catch((err: unknown) => this.markDown(err));
    const deadline = Date.now() + this.deps.connectTimeoutMs;
    while (this.state === 'starting' && Date.now() < deadline) await sleep(10);
    if (this.state === 'starting') this.markDown(new Error(`no answer within ${this.deps.connectTimeoutMs} ms`));
  }

  /** Runs `call` when Redis is up; UNAVAILABLE when it is down or the call fails (which marks it down). */
  async attempt<T>(operation: RedisOperation, call: (client: Redis) => Promise<T>): Promise<T | Unavailable> {
    if (this.state === 'starting') await this.ready();
    if (this.state !== 'up') {
      this.fallbacks.inc({ operation });
      return UNAVAILABLE;
    }
    try {
      return await call(this.client);
    } catch (err) {
      this.markDown(err);
      this.fallbacks.inc({ operation });
      return UNAVAILABLE;
    }
  }

  /**
   * A write of cached collections after the durable store took it. When Redis does not take it too, the
   * collections are remembered and dropped from Redis before it is used again, so it never answers with
   * what this process changed meanwhile.
   */
  async write(keys: readonly string[], call: (client: Redis) => Promise<unknown>): Promise<void> {
    if ((await this.attempt('write', call)) === UNAVAILABLE) this.remember(keys);
  }

  /** Called each time Redis becomes usable (again). */
  onUp(listener: () => void): void {
    this.upListeners.add(listener);
  }

  async close(): Promise<void> {
    this.state = 'closed';
    if (this.probe) clearInterval(this.probe);
    this.probe = undefined;
    this.upGauge.set(0);
    this.client.disconnect();
  }

  private remember(keys: readonly string[]): void {
    if (this.missedOverflow) return;
    for (const k of keys) this.missed.add(k);
    if (this.missed.size > MAX_MISSED) {
      this.missed.clear();
      this.missedOverflow = true;
    }
  }

  private markDown(err: unknown): void {
    this.outages++;
    if (this.state === 'down' || this.state === 'closed') return;
    const was = this.state;
    this.state = 'down';
    this.upGauge.set(0);
    const message = err instanceof Error ? err.message : String(err);
    this.deps.logger.warn(
      { err: message },
      was === 'starting' ? 'Redis unreachable at start: running without it until it answers' : 'Redis unreachable: running without it (metadata from the durable store, leases in this process) until it answers again',
    );
  }

  private startProbing(): void {
    if (this.probe) return;
    this.probe = setInterval(() => {
      if (this.state === 'down' && this.client.status === 'ready') void this.recover();
    }, this.deps.probeIntervalMs ?? 1000);
    this.probe.unref();
  }

  /** Makes Redis usable again (see the class comment); false when it failed, to be tried again. */
  private recover(): Promise<boolean> {
    if (this.state === 'up' || this.state === 'closed') return Promise.resolve(this.state === 'up');
    this.recovering ??= this.repair().finally(() => (this.recovering = undefined));
    return this.recovering;
  }

  private async repair(): Promise<boolean> {
    const { client } = this;
    const { keys, hashes, logger } = this.deps;
    const outages = this.outages;
    try {
      // A server that does not answer INFO (renamed by a provider) is taken as the same one.
      const info = await client.info('server').catch(() => '');
      const runId = /^run_id:(\S+)/m.exec(info)?.[1] ?? 'unknown';
      const builtOn = await client.get(keys.server);
      if (builtOn !== null && builtOn !== runId) await this.dropCache();
      if (builtOn !== runId) await client.set(keys.server, runId);
      // What this process wrote to storage alone; writes keep being missed while this runs, so until none are left.
      while (this.missedOverflow || this.missed.size > 0) {
        const overflow = this.missedOverflow;
        const missed = [...this.missed];
        this.missedOverflow = false;
        this.missed.clear();
        try {
          await (overflow ? this.dropCache() : Promise.all(missed.map((k) => hashes.reset(k))));
        } catch (err) {
          if (overflow) this.missedOverflow = true;
          else for (const k of missed) this.missed.add(k);
          throw err;
        }
      }
    } catch (err) {
      logger.debug({ err: (err as Error).message }, 'Redis not usable yet');
      return false;
    }
    // Lost again (or closed) while repairing: the next probe tries again.
    if (this.outages !== outages || this.state === 'closed') return false;
    const was = this.state;
    this.state = 'up';
    this.upGauge.set(1);
    if (was === 'down') logger.info('Redis answers again: metadata cached and leases shared through it');
    for (const l of this.upListeners) l();
    return true;
  }

  /** Deletes every cached collection (not leases, not access times). */
  private async dropCache(): Promise<void> {
    let cursor = '0';
    do {
      const [next, found] = await this.client.scan(cursor, 'MATCH', this.deps.keys.cachePattern, 'COUNT', 1000);
      if (found.length > 0) await this.client.unlink(...found);
      cursor = next;
    } while (cursor !== '0');
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
