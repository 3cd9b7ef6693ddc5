import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/common/clock.js';
import { silentLogger, type Logger } from '../../../src/common/logger.js';
import { mirrorRedisSchema } from '../../../src/config/schema.js';
import { FsStorage } from '../../../src/mirror/store/fs/fs-storage.js';
import type { UploadSession } from '../../../src/mirror/store/metadata-store.js';
import { createRedisClient } from '../../../src/mirror/store/redis/redis-client.js';
import { RedisMetadataStore } from '../../../src/mirror/store/redis/redis-metadata-store.js';
import type { RepositoryRef, TagRecord } from '../../../src/mirror/store/types.js';
import { captureLogs } from '../../helpers/log-capture.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { describeMetadataStoreContract, sha256 } from '../../helpers/storage-contract.js';
import { makeTempDir, useCleanup } from '../../helpers/tmp.js';

let redis: TestRedis;
let prefixes = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis?.cleanup());

interface Opened {
  store: RedisMetadataStore;
  registry: Registry;
  close(): Promise<void>;
}

/** A RedisMetadataStore over a filesystem metadata store in `root` (a new FsStorage each time, as a new process has). */
async function open(root: string, opts: { prefix: string; logger?: Logger; commandTimeout?: string }): Promise<Opened> {
  const storage = new FsStorage(root, systemClock);
  await storage.prepare();
  const config = mirrorRedisSchema.parse({ url: redis.url, keyPrefix: opts.prefix, commandTimeout: opts.commandTimeout ?? '300ms', connectTimeout: '1s' });
  const registry = new Registry();
  const store = new RedisMetadataStore(
    storage.metadata,
    createRedisClient(config, {}),
    { keyPrefix: config.keyPrefix, cacheTtlMs: config.cacheTtl, connectTimeoutMs: config.connectTimeout, probeIntervalMs: 50 },
    { clock: systemClock, logger: opts.logger ?? silentLogger(), registry },
  );
  await store.ready();
  return { store, registry, close: () => store.close() };
}

async function gauge(registry: Registry, name: string): Promise<number> {
  const metric = await registry.getSingleMetric(name)!.get();
  return metric.values.reduce((n, v) => n + v.value, 0);
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describeMetadataStoreContract('RedisMetadataStore over FsMetadataStore', async () => {
  const dir = await makeTempDir('mg-redis-metadata-');
  const { store, close } = await open(path.join(dir.path, 'storage'), { prefix: `contract${prefixes++}:` });
  return {
    store,
    cleanup: async () => {
      await close();
      await dir.cleanup();
    },
    // Lease expiry is Redis's own clock (PX) and the system clock: time passes for real.
    elapse: (ms) => sleep(ms),
  };
});

const repo: RepositoryRef = { upstream: 'docker.io', path: 'library/nginx' };
const other: RepositoryRef = { upstream: 'ghcr.io', path: 'team/app' };
const digest = (s: string): string => sha256(Buffer.from(s));
const record = (s: string): TagRecord => ({ digest: digest(s), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: s.length, checkedAt: 1_700_000_000_000 });
const upload = (id: string, offset: number): UploadSession => ({ id, repo: other, writeId: `w-${id}`, offset, startedAt: 1, updatedAt: 2 + offset });

/** Everything a store answers about the records written by `populate`. */
async function snapshot(store: RedisMetadataStore): Promise<unknown> {
  return {
    tag: await store.getTag(repo, 'latest'),
    tags: (await store.listTags(repo)).map((t) => [t.tag, t.record]),
    linked: await store.isLinked(repo, 'blob', digest('layer')),
    links: (await store.listLinks(repo, 'blob')).map((l) => l.digest),
    manifests: (await store.listLinks(other, 'manifest')).map((l) => l.digest),
    referrers: await store.listReferrers(repo, digest('m1')),
    catalog: await store.listRepositories(),
    upload: await store.getUpload('u1'),
    uploads: await store.listUploads(),
    access: await store.loadAccessTimes(),
  };
}

async function populate(store: RedisMetadataStore): Promise<void> {
  await store.putTag(repo, 'latest', record('m1'));
  await store.putTag(repo, 'v1', record('m0'));
  await store.link(repo, 'blob', digest('layer'));
  await store.link(other, 'manifest', digest('m2'));
  await store.putReferrer(repo, digest('m1'), { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digest('sig'), size: 3, artifactType: 'application/example' });
  await store.putUpload(upload('u1', 4096));
  await store.saveAccessTimes(new Map([['blob:x', 100], ['tag:y', 200]]));
}

describe('RedisMetadataStore: Redis is never the only copy', () => {
  const cleanup = useCleanup();

  async function root(): Promise<string> {
    return path.join(cleanup.add(await makeTempDir('mg-redis-metadata-')).path, 'storage');
  }

  it('FLUSHALL loses nothing: every record reads back, through this store and through a new one', async () => {
    const dir = await root();
    const prefix = `flush${prefixes++}:`;
    const a = await open(dir, { prefix });
    cleanup.add(a.close);
    await populate(a.store);
    const before = await snapshot(a.store);
    expect(before).toMatchObject({ tag: record('m1'), linked: true, catalog: [repo, other], upload: upload('u1', 4096) });
    expect(await snapshot(a.store)).toEqual(before); // now answered from Redis

    await redis.flushAll();
    expect(await redis.command('DBSIZE')).toBe(0);
    expect(await snapshot(a.store)).toEqual(before);
    await redis.flushAll();
    const b = await open(dir, { prefix });
    cleanup.add(b.close);
    expect(await snapshot(b.store)).toEqual(before);
    // Redis came back to use for all of it, up all along.
    expect(await gauge(a.registry, 'mirrorgate_redis_up')).toBe(1);
    expect(await gauge(a.registry, 'mirrorgate_redis_fallbacks_total')).toBe(0);
  });

  it('what one store writes, another reads from Redis; deletes are seen too', async () => {
    const dir = await root();
    const prefix = `shared${prefixes++}:`;
    const a = await open(dir, { prefix });
    const b = await open(dir, { prefix });
    cleanup.add(a.close);
    cleanup.add(b.close);
    await a.store.putTag(repo, 'latest', record('one'));
    expect(await b.store.getTag(repo, 'latest')).toEqual(record('one'));
    expect((await b.store.listTags(repo)).map((t) => t.tag)).toEqual(['latest']);
    await a.store.putTag(repo, 'latest', record('two'));
    await a.store.putTag(repo, 'v2', record('two'));
    expect(await b.store.getTag(repo, 'latest')).toEqual(record('two'));
    expect((await b.store.listTags(repo)).map((t) => t.tag)).toEqual(['latest', 'v2']);
    expect(await a.store.deleteTag(repo, 'v2')).toBe(true);
    expect(await b.store.getTag(repo, 'v2')).toBeUndefined();
    expect((await b.store.listTags(repo)).map((t) => t.tag)).toEqual(['latest']);
    await a.store.link(repo, 'blob', digest('layer'));
    expect(await b.store.listRepositories()).toEqual([repo]);
    expect(await a.store.unlink(repo, 'blob', digest('layer'))).toBe(true);
    expect(await b.store.isLinked(repo, 'blob', digest('layer'))).toBe(false);
  });

  it('leases are shared: one holder across stores on one Redis, until release or expiry', async () => {
    const dir = await root();
    const prefix = `lease${prefixes++}:`;
    const a = await open(dir, { prefix });
    const b = await open(dir, { prefix });
    cleanup.add(a.close);
    cleanup.add(b.close);
    const held = await a.store.acquireLease('fetch:sha256:x', 'a', 60_000);
    expect(held).toBeDefined();
    expect(await b.store.acquireLease('fetch:sha256:x', 'b', 60_000)).toBeUndefined();
    expect(await b.store.acquireLease('fetch:sha256:y', 'b', 60_000)).toBeDefined();
    await held!.release();
    // A ttl a loaded machine cannot outrun between two calls, and a sleep past it.
    const short = await b.store.acquireLease('fetch:sha256:x', 'b', 1500);
    expect(short).toBeDefined();
    expect(await a.store.acquireLease('fetch:sha256:x', 'a', 60_000)).toBeUndefined();
    await sleep(1700);
    expect(await a.store.acquireLease('fetch:sha256:x', 'a', 60_000)).toBeDefined();
    expect(await short!.renew(1500)).toBe(false);
  });

  it('a lease lost with a FLUSHALL is taken again by its holder on renewal, if nobody took it meanwhile', async () => {
    const dir = await root();
    const prefix = `lease${prefixes++}:`;
    const a = await open(dir, { prefix });
    const b = await open(dir, { prefix });
    cleanup.add(a.close);
    cleanup.add(b.close);
    const lease = await a.store.acquireLease('lifecycle', 'a', 60_000);
    await redis.flushAll();
    expect(await lease!.renew(60_000)).toBe(true);
    expect(await b.store.acquireLease('lifecycle', 'b', 60_000)).toBeUndefined();
    await redis.flushAll();
    const taken = await b.store.acquireLease('lifecycle', 'b', 60_000);
    expect(taken).toBeDefined();
    expect(await lease!.renew(60_000)).toBe(false);
  });

  it('Redis stopped: every operation still answers (from storage, leases in-process), up 0, one warning; restarted: up 1', async () => {
    const dir = await root();
    const logs = captureLogs('info');
    const a = await open(dir, { prefix: `down${prefixes++}:`, logger: logs.logger });
    cleanup.add(a.close);
    await populate(a.store);
    const before = await snapshot(a.store);
    expect(await gauge(a.registry, 'mirrorgate_redis_up')).toBe(1);

    await redis.stop();
    try {
      expect(await snapshot(a.store)).toEqual(before);
      await a.store.putTag(repo, 'during', record('d'));
      expect(await a.store.getTag(repo, 'during')).toEqual(record('d'));
      const lease = await a.store.acquireLease('fetch:sha256:z', 'a', 60_000);
      expect(lease).toBeDefined();
      expect(await a.store.acquireLease('fetch:sha256:z', 'a2', 60_000)).toBeUndefined(); // in-process leases still exclude
      expect(await lease!.renew(60_000)).toBe(true);
      await lease!.release();
      expect(await gauge(a.registry, 'mirrorgate_redis_up')).toBe(0);
      expect(await gauge(a.registry, 'mirrorgate_redis_fallbacks_total')).toBeGreaterThan(10);
      const warnings = logs.lines().filter((l) => l.level === 40);
      expect(warnings).toHaveLength(1);
      expect(String(warnings[0]!.msg)).toMatch(/Redis unreachable/);
    } finally {
      await redis.start();
    }
    await until('Redis up again', async () => (await gauge(a.registry, 'mirrorgate_redis_up')) === 1);
    expect(logs.lines().filter((l) => l.level === 30 && /Redis answers again/.test(String(l.msg)))).toHaveLength(1);
    expect(await a.store.getTag(repo, 'during')).toEqual(record('d'));
    const lease = await a.store.acquireLease('fetch:sha256:z', 'a', 60_000);
    expect(await redis.command('EXISTS', `${'down'}${prefixes - 1}:lease:fetch:sha256:z`)).toBe(1);
    await lease!.release();
  }, 30_000);

  it('a store that wrote while Redis hung drops what it changed before using Redis again, so no one reads it stale', async () => {
    const dir = await root();
    const prefix = `hung${prefixes++}:`;
    const a = await open(dir, { prefix });
    const b = await open(dir, { prefix });
    cleanup.add(a.close);
    cleanup.add(b.close);
    await a.store.putTag(repo, 'latest', record('old'));
    await a.store.putTag(repo, 'gone', record('old'));
    await a.store.link(repo, 'blob', digest('layer'));
    expect((await b.store.listTags(repo)).map((t) => t.tag)).toEqual(['gone', 'latest']); // cached, complete
    expect(await b.store.isLinked(repo, 'blob', digest('layer'))).toBe(true);

    redis.pause();
    try {
      await a.store.putTag(repo, 'latest', record('new')); // one command timeout, then without Redis
      expect(await gauge(a.registry, 'mirrorgate_redis_up')).toBe(0);
      expect(await a.store.deleteTag(repo, 'gone')).toBe(true);
      expect(await a.store.unlink(repo, 'blob', digest('layer'))).toBe(true);
    } finally {
      redis.resume();
    }
    await until('a back on Redis', async () => (await gauge(a.registry, 'mirrorgate_redis_up')) === 1);
    await until('b back on Redis', async () => (await b.store.listRepositories(), (await gauge(b.registry, 'mirrorgate_redis_up')) === 1));
    expect(await b.store.getTag(repo, 'latest')).toEqual(record('new'));
    expect(await b.store.getTag(repo, 'gone')).toBeUndefined();
    expect((await b.store.listTags(repo)).map((t) => t.tag)).toEqual(['latest']);
    expect(await b.store.isLinked(repo, 'blob', digest('layer'))).toBe(false);
  }, 30_000);

  it('a Redis restarted from an old snapshot is not trusted: its cache is dropped, storage answers', async () => {
    const dir = await root();
    const a = await open(dir, { prefix: `snap${prefixes++}:` });
    cleanup.add(a.close);
    await a.store.putTag(repo, 'latest', record('old'));
    expect((await a.store.listTags(repo)).map((t) => t.record)).toEqual([record('old')]);
    await redis.save();
    await a.store.putTag(repo, 'latest', record('new'));
    await redis.stop();
    await redis.start(); // loads the snapshot: the tag as it was, the list marked complete
    await until('Redis up again', async () => (await a.store.listRepositories(), (await gauge(a.registry, 'mirrorgate_redis_up')) === 1));
    expect(await a.store.getTag(repo, 'latest')).toEqual(record('new'));
    expect((await a.store.listTags(repo)).map((t) => t.record)).toEqual([record('new')]);
    await redis.flushAll();
    await redis.save(); // later tests start from an empty snapshot
  }, 30_000);
});
