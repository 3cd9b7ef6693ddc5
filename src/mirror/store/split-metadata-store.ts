import type { Descriptor } from './manifest-media.js';
import type { Lease, LinkEntry, LinkKind, MetadataStore, ReferrerEntry, StoredTag, UploadSession } from './metadata-store.js';
import type { RepositoryRef, TagRecord } from './types.js';

/**
 * Two metadata stores as one: the records of some repositories (hosted ones: pushed here, kept nowhere
 * else) and every upload session in a store all replicas share (objects in the bucket), everything else in
 * this replica's own (proxied repositories, whose records can always be learnt again from their upstream,
 * read on every warm pull; access times; leases). Which store a repository's records are in never changes.
 */
export class SplitMetadataStore implements MetadataStore {
  constructor(
    private readonly shared: MetadataStore,
    private readonly local: MetadataStore,
    /** Whether a repository's records belong in the shared store. */
    private readonly isShared: (repo: RepositoryRef) => boolean,
  ) {}

  private of(repo: RepositoryRef): MetadataStore {
    return this.isShared(repo) ? this.shared : this.local;
  }

  async getTag(repo: RepositoryRef, tag: string): Promise<TagRecord | undefined> {
    return this.of(repo).getTag(repo, tag);
  }

  async putTag(repo: RepositoryRef, tag: string, record: TagRecord): Promise<void> {
    return this.of(repo).putTag(repo, tag, record);
  }

  async deleteTag(repo: RepositoryRef, tag: string): Promise<boolean> {
    return this.of(repo).deleteTag(repo, tag);
  }

  async listTags(repo: RepositoryRef): Promise<StoredTag[]> {
    return this.of(repo).listTags(repo);
  }

  async link(repo: RepositoryRef, kind: LinkKind, digest: string): Promise<void> {
    return this.of(repo).link(repo, kind, digest);
  }

  async isLinked(repo: RepositoryRef, kind: LinkKind, digest: string): Promise<boolean> {
    return this.of(repo).isLinked(repo, kind, digest);
  }

  async unlink(repo: RepositoryRef, kind: LinkKind, digest: string): Promise<boolean> {
    return this.of(repo).unlink(repo, kind, digest);
  }

  async listLinks(repo: RepositoryRef, kind: LinkKind): Promise<LinkEntry[]> {
    return this.of(repo).listLinks(repo, kind);
  }

  async putReferrer(repo: RepositoryRef, subject: string, descriptor: Descriptor): Promise<void> {
    return this.of(repo).putReferrer(repo, subject, descriptor);
  }

  async listReferrers(repo: RepositoryRef, subject: string): Promise<Descriptor[]> {
    return this.of(repo).listReferrers(repo, subject);
  }

  async listAllReferrers(repo: RepositoryRef): Promise<ReferrerEntry[]> {
    return this.of(repo).listAllReferrers(repo);
  }

  async deleteReferrer(repo: RepositoryRef, subject: string, digest: string): Promise<boolean> {
    return this.of(repo).deleteReferrer(repo, subject, digest);
  }

  /** Each store's own repositories (a record left in the wrong one by an older layout is not listed). */
  async listRepositories(): Promise<RepositoryRef[]> {
    const [shared, local] = await Promise.all([this.shared.listRepositories(), this.local.listRepositories()]);
    return [...shared.filter(this.isShared), ...local.filter((r) => !this.isShared(r))].sort((a, b) => compare(a.upstream, b.upstream) || compare(a.path, b.path));
  }

  async putUpload(session: UploadSession): Promise<void> {
    return this.shared.putUpload(session);
  }

  async getUpload(id: string): Promise<UploadSession | undefined> {
    return this.shared.getUpload(id);
  }

  async deleteUpload(id: string): Promise<boolean> {
    return this.shared.deleteUpload(id);
  }

  async listUploads(): Promise<UploadSession[]> {
    return this.shared.listUploads();
  }

  async loadAccessTimes(): Promise<Map<string, number>> {
    return this.local.loadAccessTimes();
  }

  async saveAccessTimes(times: ReadonlyMap<string, number>, forgotten?: Iterable<string>): Promise<void> {
    return this.local.saveAccessTimes(times, forgotten);
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    return this.local.acquireLease(name, holder, ttlMs);
  }
}

/** Plain code-unit order, the same everywhere (not the locale's). */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
