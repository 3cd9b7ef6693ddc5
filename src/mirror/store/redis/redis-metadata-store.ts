import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { Clock } from '../../../common/clock.js';
import type { Logger } from '../../../common/logger.js';
import type { Descriptor } from '../manifest-media.js';
import { MemoryLeases } from '../memory-leases.js';
import type { Lease, LinkEntry, LinkKind, MetadataStore, ReferrerEntry, StoredTag, UploadSession } from '../metadata-store.js';
import { checkTag, checkUploadId, digestParts } from '../names.js';
import type { RepositoryRef, TagRecord } from '../types.js';
import { RedisAccessTimes } from './redis-access-times.js';
import { CachedHashes } from './cached-hashes.js';
import { RedisConnection, UNAVAILABLE } from './redis-connection.js';
import { parseRepositoryField, RedisKeys, repositoryField } from './redis-keys.js';
import { RedisLeases } from './redis-leases.js';
import { decodeDescriptor, decodeLinkedAt, decodeTag, decodeUpload, encodeTag, listedTag, referrerField } from './redis-records.js';

export interface RedisMetadataStoreOptions {
  /** Prefix of every key (several mirrors, or other software, can share one Redis). */
  keyPrefix: string;
  /** How long a cached collection lives in Redis before it is read again from the durable store. */
  cacheTtlMs: number;
  /** How long the first connection may take; calls made meanwhile wait for it. */
  connectTimeoutMs: number;
  /** How often to look whether Redis answers again while it is down (default 1 s). */
  probeIntervalMs?: number;
}

export interface RedisMetadataStoreDeps {
  clock: Clock;
  logger: Logger;
  /** Where `mirrorgate_redis_up` and `mirrorgate_redis_fallbacks_total` are registered. */
  registry: Registry;
}

/**
 * Redis in front of a durable metadata store, never instead of it: every write goes to the durable store
 * first, then to Redis; reads are answered from Redis and, on a miss, from the durable store (and filled
 * into Redis). So a Redis that loses everything (a restart without persistence, `FLUSHALL`) loses nothing,
 * and one that is down costs only the durable store's speed. What Redis alone holds is what is shared
 * between processes and may be lost: leases (one download of a cold blob, one cache pass at a time across
 * replicas), and access times (merged with the durable store's, newer wins).
 */
export class RedisMetadataStore implements MetadataStore {
  readonly connection: RedisConnection;
  private readonly keys: RedisKeys;
  private readonly hashes: CachedHashes;
  private readonly leases: RedisLeases;
  private readonly access: RedisAccessTimes;

  constructor(
    private readonly durable: MetadataStore,
    client: Redis,
    options: RedisMetadataStoreOptions,
    private readonly deps: RedisMetadataStoreDeps,
  ) {
    this.keys = new RedisKeys(options.keyPrefix);
    this.hashes = new CachedHashes(client, options.cacheTtlMs);
    this.connection = new RedisConnection(client, {
      keys: this.keys,
      hashes: this.hashes,
      logger: deps.logger,
      registry: deps.registry,
      connectTimeoutMs: options.connectTimeoutMs,
      ...(options.probeIntervalMs !== undefined ? { probeIntervalMs: options.probeIntervalMs } : {}),
    });
    this.leases = new RedisLeases(this.connection, this.keys, new MemoryLeases(deps.clock));
    this.access = new RedisAccessTimes(this.connection, this.keys.access);
  }

  /** Connects, waiting at most the connect timeout for Redis; without it the store works on (see RedisConnection). */
  ready(): Promise<void> {
    return this.connection.ready();
  }

  close(): Promise<void> {
    return this.connection.close();
  }

  async getTag(repo: RepositoryRef, tag: string): Promise<TagRecord | undefined> {
    checkTag(tag);
    const entry = await this.cachedGet(this.keys.tags(repo), tag, decodeTag, async () => {
      const record = await this.durable.getTag(repo, tag);
      return record && { record };
    }, encodeTag);
    return entry?.record;
  }

  async putTag(repo: RepositoryRef, tag: string, record: TagRecord): Promise<void> {
    checkTag(tag);
    const key = this.keys.tags(repo);
    await this.durable.putTag(repo, tag, record);
    const entry = encodeTag({ record, updatedAt: this.deps.clock.now() });
    await this.connection.write([key, this.keys.catalog], () =>
      Promise.all([this.hashes.set(key, tag, entry), this.hashes.set(this.keys.catalog, repositoryField(repo), '1')]),
    );
  }

  async deleteTag(repo: RepositoryRef, tag: string): Promise<boolean> {
    checkTag(tag);
    const key = this.keys.tags(repo);
    const deleted = await this.durable.deleteTag(repo, tag);
    await this.removed(key, tag, deleted);
    return deleted;
  }

  async listTags(repo: RepositoryRef): Promise<StoredTag[]> {
    return this.cachedList(
      this.keys.tags(repo),
      (tag, value) => listedTag(tag, value),
      () => this.durable.listTags(repo),
      (t) => [t.tag, encodeTag({ record: t.record, updatedAt: t.updatedAt })],
      (a, b) => compare(a.tag, b.tag),
    );
  }

  async link(repo: RepositoryRef, kind: LinkKind, digest: string): Promise<void> {
    const key = this.keys.links(repo, kind);
    await this.durable.link(repo, kind, digest);
    // The first link time stands, as on the durable store (a link written again keeps its time).
    await this.connection.write([key, this.keys.catalog], () =>
      Promise.all([
        this.hashes.set(key, digest, String(this.deps.clock.now()), { ifAbsent: true }),
        this.hashes.set(this.keys.catalog, repositoryField(repo), '1'),
      ]),
    );
  }

  async isLinked(repo: RepositoryRef, kind: LinkKind, digest: string): Promise<boolean> {
    digestParts(digest);
    const linked = await this.cachedGet(
      this.keys.links(repo, kind),
      digest,
      () => true as const,
      async () => ((await this.durable.isLinked(repo, kind, digest)) ? (true as const) : undefined),
      () => '', // when it was linked is not known from a single read
    );
    return linked === true;
  }

  async unlink(repo: RepositoryRef, kind: LinkKind, digest: string): Promise<boolean> {
    const key = this.keys.links(repo, kind);
    const deleted = await this.durable.unlink(repo, kind, digest);
    await this.removed(key, digest, deleted);
    return deleted;
  }

  async listLinks(repo: RepositoryRef, kind: LinkKind): Promise<LinkEntry[]> {
    return this.cachedList(
      this.keys.links(repo, kind),
      (digest, value) => {
        const linkedAt = decodeLinkedAt(value);
        return linkedAt === undefined ? undefined : { digest, linkedAt };
      },
      () => this.durable.listLinks(repo, kind),
      (l) => [l.digest, String(l.linkedAt)],
      (a, b) => compare(a.digest, b.digest),
    );
  }

  async putReferrer(repo: RepositoryRef, subject: string, descriptor: Descriptor): Promise<void> {
    const key = this.keys.referrers(repo);
    await this.durable.putReferrer(repo, subject, descriptor);
    await this.connection.write([key], () => this.hashes.set(key, referrerField(subject, descriptor.digest), JSON.stringify(descriptor)));
  }

  async listReferrers(repo: RepositoryRef, subject: string): Promise<Descriptor[]> {
    digestParts(subject);
    return (await this.listAllReferrers(repo)).filter((e) => e.subject === subject).map((e) => e.descriptor);
  }

  async listAllReferrers(repo: RepositoryRef): Promise<ReferrerEntry[]> {
    return this.cachedList(
      this.keys.referrers(repo),
      (field, value) => {
        const [subject, digest] = field.split(' ');
        const descriptor = decodeDescriptor(value);
        return subject && descriptor && descriptor.digest === digest ? { subject, descriptor } : undefined;
      },
      () => this.durable.listAllReferrers(repo),
      (e) => [referrerField(e.subject, e.descriptor.digest), JSON.stringify(e.descriptor)],
      (a, b) => compare(a.subject, b.subject) || compare(a.descriptor.digest, b.descriptor.digest),
    );
  }

  async deleteReferrer(repo: RepositoryRef, subject: string, digest: string): Promise<boolean> {
    const key = this.keys.referrers(repo);
    digestParts(subject);
    digestParts(digest);
    const deleted = await this.durable.deleteReferrer(repo, subject, digest);
    await this.connection.write([key], () => this.hashes.delete(key, referrerField(subject, digest)));
    return deleted;
  }

  async listRepositories(): Promise<RepositoryRef[]> {
    return this.cachedList(
      this.keys.catalog,
      (field) => parseRepositoryField(field),
      () => this.durable.listRepositories(),
      (r) => [repositoryField(r), '1'],
      (a, b) => compare(a.upstream, b.upstream) || compare(a.path, b.path),
    );
  }

  async putUpload(session: UploadSession): Promise<void> {
    const key = this.keys.uploads;
    await this.durable.putUpload(session);
    await this.connection.write([key], () => this.hashes.set(key, session.id, JSON.stringify(session)));
  }

  async getUpload(id: string): Promise<UploadSession | undefined> {
    checkUploadId(id);
    return this.cachedGet(this.keys.uploads, id, decodeUpload, () => this.durable.getUpload(id), (s) => JSON.stringify(s));
  }

  async deleteUpload(id: string): Promise<boolean> {
    const key = this.keys.uploads;
    const deleted = await this.durable.deleteUpload(id);
    await this.connection.write([key], () => this.hashes.delete(key, id));
    return deleted;
  }

  async listUploads(): Promise<UploadSession[]> {
    return this.cachedList(
      this.keys.uploads,
      (_id, value) => decodeUpload(value),
      () => this.durable.listUploads(),
      (s) => [s.id, JSON.stringify(s)],
      (a, b) => compare(a.id, b.id),
    );
  }

  async loadAccessTimes(): Promise<Map<string, number>> {
    const [saved, shared] = await Promise.all([this.durable.loadAccessTimes(), this.access.load()]);
    for (const [k, v] of shared) if (v > (saved.get(k) ?? 0)) saved.set(k, v);
    return saved;
  }

  async saveAccessTimes(times: ReadonlyMap<string, number>, forgotten: Iterable<string> = []): Promise<void> {
    const dropped = [...forgotten];
    await this.durable.saveAccessTimes(times, dropped);
    await this.access.save(times, dropped);
  }

  acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    return this.leases.acquire(name, holder, ttlMs);
  }

  /** A record removed from the durable store goes from Redis too; the catalog is read again when a repository may have emptied. */
  private async removed(key: string, field: string, deleted: boolean): Promise<void> {
    const keys = deleted ? [key, this.keys.catalog] : [key];
    await this.connection.write(keys, () => Promise.all([this.hashes.delete(key, field), deleted ? this.hashes.reset(this.keys.catalog) : undefined]));
  }

  /** One record: from Redis, else from the durable store (then filled into Redis). */
  private async cachedGet<T>(
    key: string,
    field: string,
    decode: (value: string) => T | undefined,
    load: () => Promise<T | undefined>,
    encode: (value: T) => string,
  ): Promise<T | undefined> {
    const read = await this.connection.attempt('read', () => this.hashes.get(key, field));
    if (read !== UNAVAILABLE) {
      if (read.state === 'absent') return undefined;
      if (read.state === 'hit') {
        const value = decode(read.value);
        if (value !== undefined) return value;
      }
    }
    const loaded = await load();
    if (loaded !== undefined && read !== UNAVAILABLE && read.state === 'miss') {
      await this.connection.attempt('read', () => this.hashes.fillOne(key, read.version, field, encode(loaded)));
    }
    return loaded;
  }

  /** A whole collection: from Redis when it holds all of it, else from the durable store (then filled into Redis). */
  private async cachedList<T>(
    key: string,
    decode: (field: string, value: string) => T | undefined,
    load: () => Promise<T[]>,
    encode: (item: T) => [string, string],
    order: (a: T, b: T) => number,
  ): Promise<T[]> {
    const read = await this.connection.attempt('read', () => this.hashes.list(key));
    if (read !== UNAVAILABLE && read.complete) {
      const out: T[] = [];
      for (const [field, value] of read.entries) {
        const item = decode(field, value);
        if (item === undefined) break; // an entry that cannot be listed (filled from a single read): list from the durable store
        out.push(item);
      }
      if (out.length === read.entries.size) return out.sort(order);
    }
    const loaded = await load();
    if (read !== UNAVAILABLE) await this.connection.attempt('read', () => this.hashes.fillAll(key, read.version, loaded.map(encode)));
    return loaded;
  }
}

/** Plain code-unit order, as the durable stores sort. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
