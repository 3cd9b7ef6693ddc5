import { createHash } from 'node:crypto';
import { fail } from '../../common/errors.js';
import { parseDigest } from '../../reference/grammar.js';
import type { AccessRecorder } from '../cache/access-tracker.js';
import { manifestMediaType, manifestReferences, MANIFEST_MAX_BYTES, parseManifest, type Descriptor } from '../store/manifest-media.js';
import { putSmallContent, readSmallContent } from '../store/small-content.js';
import type { Storage } from '../store/storage.js';
import type { Manifest, ManifestDescriptor, ManifestRequest, ManifestStore, RepositoryRef, TagRecord } from '../store/types.js';
import { WeightedLru } from '../store/weighted-lru.js';

/**
 * Manifests, tags and referrers as the local storage holds them, scoped to repositories: a manifest is
 * readable through a repository only when the repository holds it. Manifest bytes are content-addressed,
 * stored once and exactly as received.
 */
export class LocalManifestStore implements ManifestStore {
  /**
   * Warm manifest requests are answered from memory: manifests are immutable (content-addressed), so a
   * storage read per request would only cost round trips.
   */
  private readonly memory = new WeightedLru<string, Manifest>(64 * 1024 * 1024, (m) => m.bytes.length + 200);

  /** `access` (optional) is told of every manifest and tag read and every new manifest; it must not do I/O inline. */
  constructor(
    private readonly storage: Pick<Storage, 'manifests' | 'metadata'>,
    private readonly access?: AccessRecorder,
  ) {}

  /** Drops what the cache lifecycle removed (access-index keys: `manifest:<digest>`). */
  forget(keys: Iterable<string>): void {
    for (const key of keys) if (key.startsWith('manifest:')) this.memory.delete(key.slice('manifest:'.length));
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
    } else if (!(await this.holds(repo, digest))) {
      return undefined;
    }
    return this.readManifest(digest);
  }

  holds(repo: RepositoryRef, digest: string): Promise<boolean> {
    return this.storage.metadata.isLinked(repo, 'manifest', digest);
  }

  /**
   * Records that the repository holds a manifest and, when its bytes are stored, what it references (its
   * blobs and child manifests): content a repository's manifest names is content of that repository.
   */
  async hold(repo: RepositoryRef, digest: string, manifest?: Manifest): Promise<void> {
    const m = manifest ?? (await this.readManifest(digest));
    const { metadata } = this.storage;
    await metadata.link(repo, 'manifest', digest);
    const doc = m && parseManifest(m.bytes);
    if (!doc) return;
    const refs = manifestReferences(doc);
    await Promise.all([
      ...refs.blobs.filter((d) => parseDigest(d)).map((d) => metadata.link(repo, 'blob', d)),
      ...refs.manifests.filter((d) => parseDigest(d)).map((d) => metadata.link(repo, 'manifest', d)),
    ]);
  }

  /** The stored manifest bytes for a digest, whichever repository holds them (callers check that). */
  async readManifest(digest: string): Promise<Manifest | undefined> {
    const remembered = this.memory.get(digest);
    if (remembered) {
      this.access?.manifestRead(digest);
      return remembered;
    }
    const bytes = await readSmallContent(this.storage.manifests, digest, MANIFEST_MAX_BYTES);
    if (!bytes) return undefined;
    this.access?.manifestRead(digest);
    const m = { digest, mediaType: manifestMediaType(bytes), bytes };
    this.memory.set(digest, m);
    return m;
  }

  /**
   * Stores manifest bytes after checking they hash to `digest`, has the repository hold them (and what they
   * reference), and records the referrer when the manifest has a subject.
   */
  async putManifest(repo: RepositoryRef, digest: string, bytes: Buffer, contentType?: string): Promise<Manifest> {
    const d = parseDigest(digest);
    if (!d) throw fail('DIGEST_INVALID', `invalid digest ${digest}`);
    const actual = `${d.algorithm}:${createHash(d.algorithm).update(bytes).digest('hex')}`;
    if (actual !== digest) throw fail('DIGEST_INVALID', `manifest digest ${actual} does not match ${digest}`);
    const mediaType = manifestMediaType(bytes, contentType);
    if (!(await this.storage.manifests.stat(digest))) {
      await putSmallContent(this.storage.manifests, digest, bytes);
      this.access?.stored('manifest', digest, bytes.length);
    } else {
      this.access?.manifestRead(digest);
    }
    const manifest = { digest, mediaType, bytes };
    await this.hold(repo, digest, manifest);
    const doc = parseManifest(bytes);
    if (doc?.subject && typeof doc.subject.digest === 'string' && parseDigest(doc.subject.digest)) {
      const descriptor: Descriptor = { mediaType, digest, size: bytes.length };
      const artifactType = doc.artifactType ?? doc.config?.mediaType;
      if (artifactType) descriptor.artifactType = artifactType;
      if (doc.annotations) descriptor.annotations = doc.annotations;
      await this.storage.metadata.putReferrer(repo, doc.subject.digest, descriptor);
    }
    return manifest;
  }

  async readTag(repo: RepositoryRef, tag: string): Promise<TagRecord | undefined> {
    const rec = await this.storage.metadata.getTag(repo, tag);
    if (rec) this.access?.tagRead(repo, tag);
    return rec;
  }

  /** Writes a tag record; the repository holds what the tag points at. */
  async writeTag(repo: RepositoryRef, tag: string, record: TagRecord): Promise<void> {
    await this.storage.metadata.putTag(repo, tag, record);
    this.access?.tagRead(repo, tag);
    await this.hold(repo, record.digest);
  }

  async listTags(repo: RepositoryRef): Promise<string[]> {
    return (await this.storage.metadata.listTags(repo)).map((t) => t.tag);
  }

  /** Referrer descriptors of a subject held in this repository. */
  listReferrers(repo: RepositoryRef, subject: string): Promise<Descriptor[]> {
    return this.storage.metadata.listReferrers(repo, subject);
  }
}
