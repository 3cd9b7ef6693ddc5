import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fail } from '../../common/errors.js';
import { accessKey } from '../cache/access-keys.js';
import type { AccessRecorder } from '../cache/access-tracker.js';
import { WeightedLru } from './weighted-lru.js';
import { parseDigest } from '../../reference/grammar.js';
import { writeFileAtomic } from './atomic-file.js';
import type { StorageLayout } from './layout.js';
import { manifestMediaType, parseManifest, type Descriptor } from './manifest-media.js';
import type { Manifest, ManifestDescriptor, ManifestRequest, ManifestStore, RepositoryRef, TagRecord } from './types.js';

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Manifests, tags and referrer links on the local filesystem. Manifest bytes are content-addressed and
 * stored exactly as received; tags are small JSON records saying what a tag pointed at and when that was
 * last confirmed upstream.
 */
export class FsManifestStore implements ManifestStore {
  /**
   * Warm manifest requests are answered from memory: manifests are immutable (content-addressed) and tag
   * records are written through, so a file read per request would only cost thread-pool round trips.
   */
  private readonly manifestMemory = new WeightedLru<string, Manifest>(64 * 1024 * 1024, (m) => m.bytes.length + 200);
  private readonly tagMemory = new WeightedLru<string, TagRecord>(100_000);

  /** `access` (optional) is told of every manifest and tag read and every new manifest; it must not do I/O inline. */
  constructor(
    private readonly layout: StorageLayout,
    private readonly access?: AccessRecorder,
  ) {}

  /** Drops what the cache lifecycle removed from disk (access-index keys: `manifest:<digest>`, `tag:<repo>:<tag>`). */
  forget(keys: Iterable<string>): void {
    for (const key of keys) {
      if (key.startsWith('manifest:')) this.manifestMemory.delete(key.slice('manifest:'.length));
      else if (key.startsWith('tag:')) this.tagMemory.delete(key);
    }
  }

  async stat(repo: RepositoryRef, request: ManifestRequest): Promise<ManifestDescriptor | undefined> {
    const m = await this.get(repo, request);
    return m && { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
  }

  async get(repo: RepositoryRef, request: ManifestRequest): Promise<Manifest | undefined> {
    let digest = request.reference;
    if (!parseDigest(digest)) {
      const tag = await this.readTag(repo, request.reference);
      if (!tag) return undefined;
      digest = tag.digest;
    }
    return this.readManifest(digest);
  }

  /** The stored manifest bytes for a digest, wherever they were fetched from. */
  async readManifest(digest: string): Promise<Manifest | undefined> {
    const remembered = this.manifestMemory.get(digest);
    if (remembered) {
      this.access?.manifestRead(digest);
      return remembered;
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(this.layout.manifestPath(digest));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    this.access?.manifestRead(digest);
    const m = { digest, mediaType: manifestMediaType(bytes), bytes };
    this.manifestMemory.set(digest, m);
    return m;
  }

  async hasManifest(digest: string): Promise<boolean> {
    try {
      await stat(this.layout.manifestPath(digest));
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  /**
   * Stores manifest bytes after checking they hash to `digest`, links them into the repository, and records
   * the referrer link when the manifest has a subject.
   */
  async putManifest(repo: RepositoryRef, digest: string, bytes: Buffer, contentType?: string): Promise<Manifest> {
    const d = parseDigest(digest);
    if (!d) throw fail('DIGEST_INVALID', `invalid digest ${digest}`);
    const actual = `${d.algorithm}:${createHash(d.algorithm).update(bytes).digest('hex')}`;
    if (actual !== digest) throw fail('DIGEST_INVALID', `manifest digest ${actual} does not match ${digest}`);
    const mediaType = manifestMediaType(bytes, contentType);
    if (!(await this.hasManifest(digest))) {
      await writeFileAtomic(this.layout.manifestPath(digest), bytes, this.layout.tmpDir);
      this.access?.stored('manifest', digest, bytes.length);
    } else {
      this.access?.manifestRead(digest);
    }
    await writeFileAtomic(this.layout.manifestLinkPath(repo, digest), '', this.layout.tmpDir);
    const doc = parseManifest(bytes);
    if (doc?.subject && typeof doc.subject.digest === 'string' && parseDigest(doc.subject.digest)) {
      const descriptor: Descriptor = { mediaType, digest, size: bytes.length };
      const artifactType = doc.artifactType ?? doc.config?.mediaType;
      if (artifactType) descriptor.artifactType = artifactType;
      if (doc.annotations) descriptor.annotations = doc.annotations;
      const file = path.join(this.layout.referrersDir(repo, doc.subject.digest), `${d.hex}.json`);
      await writeFileAtomic(file, JSON.stringify(descriptor), this.layout.tmpDir);
    }
    return { digest, mediaType, bytes };
  }

  async readTag(repo: RepositoryRef, tag: string): Promise<TagRecord | undefined> {
    const key = accessKey.tag(repo, tag);
    const remembered = this.tagMemory.get(key);
    if (remembered) {
      this.access?.tagRead(repo, tag);
      return remembered;
    }
    try {
      const rec = JSON.parse(await readFile(this.layout.tagPath(repo, tag), 'utf8')) as TagRecord;
      if (!parseDigest(rec.digest)) return undefined;
      this.access?.tagRead(repo, tag);
      this.tagMemory.set(key, rec);
      return rec;
    } catch (err) {
      // A record that cannot be parsed is treated as absent: the tag is fetched again and rewritten.
      if (isMissing(err) || err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  async writeTag(repo: RepositoryRef, tag: string, record: TagRecord): Promise<void> {
    const key = accessKey.tag(repo, tag);
    this.tagMemory.delete(key); // if the write fails, the next read goes to disk
    await writeFileAtomic(this.layout.tagPath(repo, tag), JSON.stringify(record), this.layout.tmpDir);
    this.tagMemory.set(key, record);
    this.access?.tagRead(repo, tag);
  }

  async listTags(repo: RepositoryRef): Promise<string[]> {
    try {
      const names = await readdir(path.join(this.layout.repositoryDir(repo), '_tags'));
      return names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).sort();
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
  }

  /** Referrer descriptors of a subject held in this repository. */
  async listReferrers(repo: RepositoryRef, subject: string): Promise<Descriptor[]> {
    const dir = this.layout.referrersDir(repo, subject);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
    const out: Descriptor[] = [];
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      try {
        out.push(JSON.parse(await readFile(path.join(dir, name), 'utf8')) as Descriptor);
      } catch (err) {
        if (!isMissing(err) && !(err instanceof SyntaxError)) throw err;
      }
    }
    return out;
  }
}
