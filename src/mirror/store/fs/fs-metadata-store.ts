import { mkdir, open, readdir, readFile, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../../../common/clock.js';
import { parseDigest } from '../../../reference/grammar.js';
import type { Descriptor } from '../manifest-media.js';
import { MemoryLeases } from '../memory-leases.js';
import { FsLeases } from './fs-leases.js';
import type { Lease, LinkEntry, LinkKind, MetadataStore, ReferrerEntry, StoredTag, UploadSession } from '../metadata-store.js';
import type { RepositoryRef, TagRecord } from '../types.js';
import { WeightedLru } from '../weighted-lru.js';
import { writeFileAtomic } from './atomic-file.js';
import type { StorageLayout } from './layout.js';
import { dirNames, isMissing } from './missing.js';

interface AccessFile {
  version: 1;
  /** key -> epoch ms of the last access */
  entries: Record<string, number>;
}

const BATCH = 64;
/** Shared: how long one save may hold the access index, and how long another waits for it. */
const ACCESS_LEASE_MS = 10_000;
const ACCESS_LEASE_WAIT_MS = 15_000;

/**
 * Metadata as small files beside the content (see StorageLayout): tag records as JSON, links as empty
 * files, referrer descriptors as JSON, access times in one JSON file, upload sessions one file each.
 * Tag records and links are also remembered in memory (written through), since warm requests read them
 * on every pull. Leases live in this process's memory.
 *
 * Shared (`shared: true`, several processes on the directory: the mirror's workers), nothing is remembered
 * in memory, since another process may change or remove it: tag records and links are read from disk,
 * access times are merged over the file at each save (under a lease, so no process's save is lost), and
 * leases are files every process sees (FsLeases).
 */
export class FsMetadataStore implements MetadataStore {
  private readonly tagMemory: WeightedLru<string, TagRecord>;
  /** Links known to exist; a miss goes to disk. */
  private readonly linkMemory: WeightedLru<string, true>;
  private readonly leases: MemoryLeases | FsLeases;
  private readonly shared: boolean;
  private access: Map<string, number> | undefined;
  private accessWrite: Promise<void> = Promise.resolve();

  constructor(
    private readonly layout: StorageLayout,
    clock: Clock,
    opts: { shared?: boolean } = {},
  ) {
    this.shared = opts.shared ?? false;
    this.leases = this.shared ? new FsLeases(layout.leasesDir, clock) : new MemoryLeases(clock);
    this.tagMemory = new WeightedLru(this.shared ? 0 : 100_000);
    this.linkMemory = new WeightedLru(this.shared ? 0 : 200_000);
  }

  async getTag(repo: RepositoryRef, tag: string): Promise<TagRecord | undefined> {
    const key = tagKey(repo, tag);
    const remembered = this.tagMemory.get(key);
    if (remembered) return remembered;
    const rec = await readJson<TagRecord>(this.layout.tagPath(repo, tag));
    if (!rec || typeof rec.digest !== 'string' || !parseDigest(rec.digest)) return undefined;
    this.tagMemory.set(key, rec);
    return rec;
  }

  async putTag(repo: RepositoryRef, tag: string, record: TagRecord): Promise<void> {
    const key = tagKey(repo, tag);
    this.tagMemory.delete(key); // if the write fails, the next read goes to disk
    await writeFileAtomic(this.layout.tagPath(repo, tag), JSON.stringify(record), this.layout.tmpDir);
    this.tagMemory.set(key, record);
  }

  async deleteTag(repo: RepositoryRef, tag: string): Promise<boolean> {
    this.tagMemory.delete(tagKey(repo, tag));
    return this.remove(this.layout.tagPath(repo, tag));
  }

  async listTags(repo: RepositoryRef): Promise<StoredTag[]> {
    const dir = this.layout.tagsDir(repo);
    const tags = (await dirNames(dir)).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).sort();
    const out: StoredTag[] = [];
    for (let i = 0; i < tags.length; i += BATCH) {
      const read = await Promise.all(
        tags.slice(i, i + BATCH).map(async (tag): Promise<StoredTag | undefined> => {
          const file = path.join(dir, `${tag}.json`);
          try {
            const [text, s] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
            const record = JSON.parse(text) as TagRecord;
            if (typeof record.digest !== 'string' || !parseDigest(record.digest)) return undefined;
            return { tag, record, updatedAt: s.mtimeMs };
          } catch {
            return undefined; // vanished or torn: treated as absent, as reads do
          }
        }),
      );
      for (const t of read) if (t) out.push(t);
    }
    return out;
  }

  async link(repo: RepositoryRef, kind: LinkKind, digest: string): Promise<void> {
    const key = linkKey(repo, kind, digest);
    if (this.linkMemory.get(key)) return;
    const file = this.layout.linkPath(repo, kind, digest);
    // An empty file, not synced: a link lost in a crash costs one upstream check, never wrong content.
    try {
      await (await open(file, 'a')).close();
    } catch (err) {
      if (!isMissing(err)) throw err;
      await mkdir(path.dirname(file), { recursive: true });
      await (await open(file, 'a')).close();
    }
    this.linkMemory.set(key, true);
  }

  async isLinked(repo: RepositoryRef, kind: LinkKind, digest: string): Promise<boolean> {
    const key = linkKey(repo, kind, digest);
    if (this.linkMemory.get(key)) return true;
    try {
      await stat(this.layout.linkPath(repo, kind, digest));
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
    this.linkMemory.set(key, true);
    return true;
  }

  async unlink(repo: RepositoryRef, kind: LinkKind, digest: string): Promise<boolean> {
    this.linkMemory.delete(linkKey(repo, kind, digest));
    return this.remove(this.layout.linkPath(repo, kind, digest));
  }

  async listLinks(repo: RepositoryRef, kind: LinkKind): Promise<LinkEntry[]> {
    const dir = this.layout.linksDir(repo, kind);
    const found: { digest: string; file: string }[] = [];
    for (const alg of (await dirNames(dir)).sort()) {
      for (const hex of (await dirNames(path.join(dir, alg))).sort()) {
        const digest = `${alg}:${hex}`;
        if (parseDigest(digest)) found.push({ digest, file: path.join(dir, alg, hex) });
      }
    }
    const out: LinkEntry[] = [];
    for (let i = 0; i < found.length; i += BATCH) {
      const stats = await Promise.all(found.slice(i, i + BATCH).map((f) => stat(f.file).catch(() => undefined)));
      stats.forEach((s, j) => {
        if (s) out.push({ digest: found[i + j]!.digest, linkedAt: s.mtimeMs });
      });
    }
    return out;
  }

  async putReferrer(repo: RepositoryRef, subject: string, descriptor: Descriptor): Promise<void> {
    await writeFileAtomic(this.layout.referrerPath(repo, subject, descriptor.digest), JSON.stringify(descriptor), this.layout.tmpDir);
  }

  async listReferrers(repo: RepositoryRef, subject: string): Promise<Descriptor[]> {
    const dir = this.layout.referrersDir(repo, subject);
    const out: Descriptor[] = [];
    for (const name of (await dirNames(dir)).filter((n) => n.endsWith('.json')).sort()) {
      const d = await readJson<Descriptor>(path.join(dir, name));
      if (d) out.push(d);
    }
    return out;
  }

  async listAllReferrers(repo: RepositoryRef): Promise<ReferrerEntry[]> {
    const root = this.layout.referrersRoot(repo);
    const out: ReferrerEntry[] = [];
    for (const alg of (await dirNames(root)).sort()) {
      for (const subjectHex of (await dirNames(path.join(root, alg))).sort()) {
        const subject = `${alg}:${subjectHex}`;
        if (!parseDigest(subject)) continue;
        for (const descriptor of await this.listReferrers(repo, subject)) out.push({ subject, descriptor });
      }
    }
    return out;
  }

  async deleteReferrer(repo: RepositoryRef, subject: string, digest: string): Promise<boolean> {
    return this.remove(this.layout.referrerPath(repo, subject, digest));
  }

  async listRepositories(): Promise<RepositoryRef[]> {
    const out: RepositoryRef[] = [];
    for (const upstreamDir of (await dirNames(this.layout.repositoriesDir)).sort()) {
      const upstream = upstreamDir.replace(/_/g, ':');
      const walk = async (dir: string, parts: string[]): Promise<void> => {
        let entries;
        try {
          entries = await readdir(dir, { withFileTypes: true });
        } catch {
          return;
        }
        const holds = entries.some((e) => e.isDirectory() && (e.name === '_tags' || e.name === '_manifests' || e.name === '_blobs'));
        if (parts.length > 0 && holds) out.push({ upstream, path: parts.join('/') });
        for (const e of entries) {
          // Names starting with `_` are the repository's own records, never a nested repository.
          if (e.isDirectory() && !e.name.startsWith('_')) await walk(path.join(dir, e.name), [...parts, e.name]);
        }
      };
      await walk(path.join(this.layout.repositoriesDir, upstreamDir), []);
    }
    return out.sort((a, b) => compare(a.upstream, b.upstream) || compare(a.path, b.path));
  }

  async putUpload(session: UploadSession): Promise<void> {
    await writeFileAtomic(this.layout.uploadPath(session.id), JSON.stringify(session), this.layout.tmpDir);
  }

  async getUpload(id: string): Promise<UploadSession | undefined> {
    return readJson<UploadSession>(this.layout.uploadPath(id));
  }

  async deleteUpload(id: string): Promise<boolean> {
    return this.remove(this.layout.uploadPath(id));
  }

  async listUploads(): Promise<UploadSession[]> {
    const out: UploadSession[] = [];
    for (const name of (await dirNames(this.layout.uploadsDir)).filter((n) => n.endsWith('.json')).sort()) {
      const s = await readJson<UploadSession>(path.join(this.layout.uploadsDir, name));
      if (s) out.push(s);
    }
    return out;
  }

  async loadAccessTimes(): Promise<Map<string, number>> {
    return new Map(await this.accessTimes());
  }

  saveAccessTimes(times: ReadonlyMap<string, number>, forgotten: Iterable<string> = []): Promise<void> {
    // One write at a time, each of the whole merged map.
    const write = this.accessWrite.then(async () => {
      if (this.shared) return this.saveSharedAccessTimes(times, forgotten);
      const current = await this.accessTimes();
      for (const [k, v] of times) if (v > (current.get(k) ?? 0)) current.set(k, v);
      for (const k of forgotten) current.delete(k);
      const doc: AccessFile = { version: 1, entries: Object.fromEntries(current) };
      await writeFileAtomic(this.layout.accessIndexPath, JSON.stringify(doc), this.layout.tmpDir);
    });
    this.accessWrite = write.catch(() => undefined);
    return write;
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    return this.leases.acquire(name, holder, ttlMs);
  }

  /** Read, merge, write under the `access-index` lease: another process's save between the read and the write would be lost. */
  private async saveSharedAccessTimes(times: ReadonlyMap<string, number>, forgotten: Iterable<string>): Promise<void> {
    const until = Date.now() + ACCESS_LEASE_WAIT_MS;
    let lease: Lease | undefined;
    while (!(lease = await this.leases.acquire('access-index', 'access-times', ACCESS_LEASE_MS))) {
      if (Date.now() > until) throw new Error('another process has held the access index for too long');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    try {
      const current = await this.accessTimes();
      for (const [k, v] of times) if (v > (current.get(k) ?? 0)) current.set(k, v);
      for (const k of forgotten) current.delete(k);
      const doc: AccessFile = { version: 1, entries: Object.fromEntries(current) };
      await writeFileAtomic(this.layout.accessIndexPath, JSON.stringify(doc), this.layout.tmpDir);
    } finally {
      await lease.release();
    }
  }

  private async accessTimes(): Promise<Map<string, number>> {
    if (this.access && !this.shared) return this.access;
    const doc = await readJson<Partial<AccessFile>>(this.layout.accessIndexPath);
    // Missing, or torn by a crash of an older version: times fall back to when content was stored.
    const entries = doc && doc.version === 1 && typeof doc.entries === 'object' && doc.entries ? doc.entries : {};
    const times = new Map(Object.entries(entries).filter((e): e is [string, number] => typeof e[1] === 'number'));
    // Shared, the file is the only copy: another process may have written it since.
    if (!this.shared) this.access = times;
    return times;
  }

  /** Removes a record file and the directories it leaves empty, up to the repositories root. */
  private async remove(file: string): Promise<boolean> {
    try {
      await unlink(file);
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
    let dir = path.dirname(file);
    const stopAt = this.layout.repositoriesDir;
    while (dir.startsWith(stopAt + path.sep)) {
      try {
        await rmdir(dir);
      } catch {
        break; // not empty, or gone already
      }
      dir = path.dirname(dir);
    }
    return true;
  }
}

/** Plain code-unit order, the same everywhere (not the locale's). */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function tagKey(repo: RepositoryRef, tag: string): string {
  return `${repo.upstream}/${repo.path}:${tag}`;
}

function linkKey(repo: RepositoryRef, kind: LinkKind, digest: string): string {
  return `${kind}:${repo.upstream}/${repo.path}@${digest}`;
}

/** A small JSON file, or undefined when it is missing or does not parse (torn by a crash). */
async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if (isMissing(err) || err instanceof SyntaxError) return undefined;
    throw err;
  }
}
