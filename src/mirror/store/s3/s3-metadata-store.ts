import type { Clock } from '../../../common/clock.js';
import { parseDigest } from '../../../reference/grammar.js';
import type { Descriptor } from '../manifest-media.js';
import { MemoryLeases } from '../memory-leases.js';
import type { Lease, LinkEntry, LinkKind, MetadataStore, ReferrerEntry, StoredTag, UploadSession } from '../metadata-store.js';
import { checkRepository, checkTag, checkUploadId, digestParts } from '../names.js';
import type { RepositoryRef, TagRecord } from '../types.js';
import { storageError } from './s3-errors.js';
import type { S3Objects } from './s3-objects.js';

/** Records read at once when a listing needs each one's body. */
const BATCH = 16;
/** No metadata record is anywhere near this; a larger object is not ours, and is not read into memory. */
const MAX_RECORD_BYTES = 1024 * 1024;

const LINK_DIRS: Record<LinkKind, string> = { manifest: '_manifests', blob: '_blobs' };
/** The record directories that make a repository exist (as on the filesystem: referrers alone do not). */
const HOLDING_DIRS = new Set(['_tags', '_manifests', '_blobs']);

interface TagObject {
  record: TagRecord;
  /** Epoch ms of the write (S3's Last-Modified has only seconds, too coarse to order pushes). */
  updatedAt: number;
}

/**
 * Metadata as small objects in the bucket, beside the content, so that every replica sharing the bucket
 * reads the same records (hosted repositories, whose tags and links exist nowhere else):
 *
 *   <prefix>meta/repositories/<upstream>/<path>/_tags/<tag>              {record, updatedAt}
 *   <prefix>meta/repositories/<upstream>/<path>/_manifests/<alg>/<hex>   empty: the repository holds it
 *   <prefix>meta/repositories/<upstream>/<path>/_blobs/<alg>/<hex>       empty
 *   <prefix>meta/repositories/<upstream>/<path>/_referrers/<alg>/<subject-hex>/<alg>/<hex>   descriptor
 *   <prefix>meta/uploads/<id>.json                                       upload session
 *   <prefix>meta/access.json                                             access times
 *
 * Nothing is remembered in memory: another replica may change any record. Leases live in this process
 * (Redis in front shares them between replicas). Every key is built from validated names only.
 */
export class S3MetadataStore implements MetadataStore {
  private readonly leases: MemoryLeases;
  private accessWrite: Promise<void> = Promise.resolve();

  constructor(
    private readonly objects: S3Objects,
    /** The storage's key prefix: empty, or ending in `/`. */
    private readonly prefix: string,
    private readonly clock: Clock,
  ) {
    this.leases = new MemoryLeases(clock);
  }

  async getTag(repo: RepositoryRef, tag: string): Promise<TagRecord | undefined> {
    return (await this.readTag(this.tagKey(repo, tag)))?.record;
  }

  async putTag(repo: RepositoryRef, tag: string, record: TagRecord): Promise<void> {
    const doc: TagObject = { record, updatedAt: this.clock.now() };
    await this.objects.put(this.tagKey(repo, tag), Buffer.from(JSON.stringify(doc)));
  }

  async deleteTag(repo: RepositoryRef, tag: string): Promise<boolean> {
    return this.remove(this.tagKey(repo, tag));
  }

  async listTags(repo: RepositoryRef): Promise<StoredTag[]> {
    const dir = `${this.repositoryPrefix(repo)}_tags/`;
    const keys: string[] = [];
    for await (const o of this.objects.list(dir)) {
      const tag = o.Key!.slice(dir.length);
      if (!tag.includes('/')) keys.push(o.Key!);
    }
    const out: StoredTag[] = [];
    for (let i = 0; i < keys.length; i += BATCH) {
      const read = await Promise.all(keys.slice(i, i + BATCH).map(async (key) => ({ tag: key.slice(dir.length), doc: await this.readTag(key) })));
      for (const { tag, doc } of read) if (doc) out.push({ tag, record: doc.record, updatedAt: doc.updatedAt });
    }
    return out.sort((a, b) => compare(a.tag, b.tag));
  }

  async link(repo: RepositoryRef, kind: LinkKind, digest: string): Promise<void> {
    const key = this.linkKey(repo, kind, digest);
    // Written once: the first link time stands (a PUT again would move Last-Modified).
    if (await this.objects.head(key)) return;
    await this.objects.put(key, Buffer.alloc(0));
  }

  async isLinked(repo: RepositoryRef, kind: LinkKind, digest: string): Promise<boolean> {
    return (await this.objects.head(this.linkKey(repo, kind, digest))) !== undefined;
  }

  async unlink(repo: RepositoryRef, kind: LinkKind, digest: string): Promise<boolean> {
    return this.remove(this.linkKey(repo, kind, digest));
  }

  async listLinks(repo: RepositoryRef, kind: LinkKind): Promise<LinkEntry[]> {
    const dir = `${this.repositoryPrefix(repo)}${LINK_DIRS[kind]}/`;
    const out: LinkEntry[] = [];
    for await (const o of this.objects.list(dir)) {
      const digest = parseDigest(o.Key!.slice(dir.length).replace('/', ':'))?.digest;
      if (digest) out.push({ digest, linkedAt: o.LastModified?.getTime() ?? 0 });
    }
    return out.sort((a, b) => compare(a.digest, b.digest));
  }

  async putReferrer(repo: RepositoryRef, subject: string, descriptor: Descriptor): Promise<void> {
    await this.objects.put(this.referrerKey(repo, subject, descriptor.digest), Buffer.from(JSON.stringify(descriptor)));
  }

  async listReferrers(repo: RepositoryRef, subject: string): Promise<Descriptor[]> {
    const s = digestParts(subject);
    return (await this.referrersUnder(repo, `${s.algorithm}/${s.hex}/`)).map((e) => e.descriptor);
  }

  async listAllReferrers(repo: RepositoryRef): Promise<ReferrerEntry[]> {
    return this.referrersUnder(repo, '');
  }

  async deleteReferrer(repo: RepositoryRef, subject: string, digest: string): Promise<boolean> {
    return this.remove(this.referrerKey(repo, subject, digest));
  }

  async listRepositories(): Promise<RepositoryRef[]> {
    const root = `${this.prefix}meta/repositories/`;
    const found = new Map<string, RepositoryRef>();
    for await (const o of this.objects.list(root)) {
      const parts = o.Key!.slice(root.length).split('/');
      // Path components never start with `_`: the first one that does is the repository's own records.
      const at = parts.findIndex((p, i) => i > 0 && p.startsWith('_'));
      if (at < 2 || !HOLDING_DIRS.has(parts[at]!)) continue;
      const repo = { upstream: parts[0]!, path: parts.slice(1, at).join('/') };
      found.set(`${repo.upstream}/${repo.path}`, repo);
    }
    return [...found.values()].sort((a, b) => compare(a.upstream, b.upstream) || compare(a.path, b.path));
  }

  async putUpload(session: UploadSession): Promise<void> {
    await this.objects.put(this.uploadKey(session.id), Buffer.from(JSON.stringify(session)));
  }

  async getUpload(id: string): Promise<UploadSession | undefined> {
    return this.readJson<UploadSession>(this.uploadKey(id));
  }

  async deleteUpload(id: string): Promise<boolean> {
    return this.remove(this.uploadKey(id));
  }

  async listUploads(): Promise<UploadSession[]> {
    const dir = `${this.prefix}meta/uploads/`;
    const keys: string[] = [];
    for await (const o of this.objects.list(dir)) if (o.Key!.endsWith('.json')) keys.push(o.Key!);
    const out: UploadSession[] = [];
    for (let i = 0; i < keys.length; i += BATCH) {
      for (const s of await Promise.all(keys.slice(i, i + BATCH).map((k) => this.readJson<UploadSession>(k)))) if (s) out.push(s);
    }
    return out;
  }

  async loadAccessTimes(): Promise<Map<string, number>> {
    return this.readAccessTimes();
  }

  /**
   * Read, merged, written back: one save at a time in this process. Replicas saving at the same moment may
   * drop each other's newest times (each keeps its own in memory and saves them again on its next pass;
   * with Redis they also meet there), which costs eviction some precision, never content.
   */
  async saveAccessTimes(times: ReadonlyMap<string, number>, forgotten: Iterable<string> = []): Promise<void> {
    const write = this.accessWrite.then(async () => {
      const current = await this.readAccessTimes();
      for (const [k, v] of times) if (v > (current.get(k) ?? 0)) current.set(k, v);
      for (const k of forgotten) current.delete(k);
      await this.objects.put(this.accessKey, Buffer.from(JSON.stringify({ version: 1, entries: Object.fromEntries(current) })));
    });
    this.accessWrite = write.catch(() => undefined);
    return write;
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    return this.leases.acquire(name, holder, ttlMs);
  }

  private get accessKey(): string {
    return `${this.prefix}meta/access.json`;
  }

  private async readAccessTimes(): Promise<Map<string, number>> {
    const doc = await this.readJson<{ version?: unknown; entries?: Record<string, unknown> }>(this.accessKey);
    const entries = doc?.version === 1 && typeof doc.entries === 'object' && doc.entries ? doc.entries : {};
    return new Map(Object.entries(entries).filter((e): e is [string, number] => typeof e[1] === 'number'));
  }

  private repositoryPrefix(repo: RepositoryRef): string {
    checkRepository(repo);
    return `${this.prefix}meta/repositories/${repo.upstream}/${repo.path}/`;
  }

  private tagKey(repo: RepositoryRef, tag: string): string {
    checkTag(tag);
    return `${this.repositoryPrefix(repo)}_tags/${tag}`;
  }

  private linkKey(repo: RepositoryRef, kind: LinkKind, digest: string): string {
    const d = digestParts(digest);
    return `${this.repositoryPrefix(repo)}${LINK_DIRS[kind]}/${d.algorithm}/${d.hex}`;
  }

  private referrerKey(repo: RepositoryRef, subject: string, digest: string): string {
    const s = digestParts(subject);
    const d = digestParts(digest);
    return `${this.repositoryPrefix(repo)}_referrers/${s.algorithm}/${s.hex}/${d.algorithm}/${d.hex}`;
  }

  private uploadKey(id: string): string {
    checkUploadId(id);
    return `${this.prefix}meta/uploads/${id}.json`;
  }

  /** Referrer records under `_referrers/<under>`, with their subjects. */
  private async referrersUnder(repo: RepositoryRef, under: string): Promise<ReferrerEntry[]> {
    const dir = `${this.repositoryPrefix(repo)}_referrers/`;
    const found: { subject: string; key: string }[] = [];
    for await (const o of this.objects.list(`${dir}${under}`)) {
      const [sa, sh, da, dh, ...rest] = o.Key!.slice(dir.length).split('/');
      const subject = parseDigest(`${sa}:${sh}`)?.digest;
      if (subject && rest.length === 0 && parseDigest(`${da}:${dh}`)) found.push({ subject, key: o.Key! });
    }
    const out: ReferrerEntry[] = [];
    for (let i = 0; i < found.length; i += BATCH) {
      const read = await Promise.all(found.slice(i, i + BATCH).map(async (f) => ({ subject: f.subject, descriptor: await this.readJson<Descriptor>(f.key) })));
      for (const r of read) if (r.descriptor) out.push({ subject: r.subject, descriptor: r.descriptor });
    }
    return out;
  }

  private async readTag(key: string): Promise<TagObject | undefined> {
    const doc = await this.readJson<Partial<TagObject>>(key);
    const record = doc?.record;
    if (!record || typeof record.digest !== 'string' || !parseDigest(record.digest) || typeof doc.updatedAt !== 'number') return undefined;
    return { record, updatedAt: doc.updatedAt };
  }

  /** A small JSON object, or undefined when it is missing or is not JSON (never written by us). */
  private async readJson<T>(key: string): Promise<T | undefined> {
    const got = await this.objects.get(key);
    if (!got) return undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of got.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_RECORD_BYTES) {
          got.body.destroy();
          return undefined;
        }
        chunks.push(chunk);
      }
    } catch (err) {
      throw storageError(err, `GET ${key}`);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
    } catch {
      return undefined;
    }
  }

  /** Deletes a record; false when it was not there. */
  private async remove(key: string): Promise<boolean> {
    if (!(await this.objects.head(key))) return false;
    await this.objects.delete(key);
    return true;
  }
}

/** Plain code-unit order, the same everywhere (not the locale's). */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
