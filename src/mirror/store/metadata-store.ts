import type { Descriptor } from './manifest-media.js';
import type { RepositoryRef, TagRecord } from './types.js';

/** What a repository can hold: manifests (by digest) and blobs (layers, configs). */
export type LinkKind = 'manifest' | 'blob';

export interface LinkEntry {
  digest: string;
  /** Epoch ms when the repository came to hold it. */
  linkedAt: number;
}

export interface StoredTag {
  tag: string;
  record: TagRecord;
  /** Epoch ms of the record's last write. */
  updatedAt: number;
}

export interface ReferrerEntry {
  subject: string;
  descriptor: Descriptor;
}

/** An upload (a push in progress): where its bytes are being written and how far it got. */
export interface UploadSession {
  id: string;
  repo: RepositoryRef;
  /** The content store's write id. */
  writeId: string;
  /** Bytes received so far. */
  offset: number;
  startedAt: number;
  updatedAt: number;
}

/** A short, renewable claim on a name: one holder at a time, gone by itself when not renewed. */
export interface Lease {
  readonly name: string;
  readonly holder: string;
  /** Extends the lease; false when it was lost (expired and taken over). */
  renew(ttlMs: number): Promise<boolean>;
  release(): Promise<void>;
}

/**
 * Everything about content that is not the content itself: tags, which repository holds which manifest or
 * blob, referrers, the catalog, access times for the cache lifecycle, and leases that decide which process
 * does a piece of shared work. Losing it loses no content; everything it says about a proxied repository
 * can be learnt again from the upstream.
 */
export interface MetadataStore {
  getTag(repo: RepositoryRef, tag: string): Promise<TagRecord | undefined>;
  putTag(repo: RepositoryRef, tag: string, record: TagRecord): Promise<void>;
  deleteTag(repo: RepositoryRef, tag: string): Promise<boolean>;
  /** Tags in the repository, sorted. */
  listTags(repo: RepositoryRef): Promise<StoredTag[]>;

  /** Records that the repository holds the content (idempotent). */
  link(repo: RepositoryRef, kind: LinkKind, digest: string): Promise<void>;
  isLinked(repo: RepositoryRef, kind: LinkKind, digest: string): Promise<boolean>;
  unlink(repo: RepositoryRef, kind: LinkKind, digest: string): Promise<boolean>;
  listLinks(repo: RepositoryRef, kind: LinkKind): Promise<LinkEntry[]>;

  /** Adds a referrer of `subject` (replacing one with the same digest). */
  putReferrer(repo: RepositoryRef, subject: string, descriptor: Descriptor): Promise<void>;
  listReferrers(repo: RepositoryRef, subject: string): Promise<Descriptor[]>;
  /** Every referrer record in the repository, for the cache lifecycle. */
  listAllReferrers(repo: RepositoryRef): Promise<ReferrerEntry[]>;
  deleteReferrer(repo: RepositoryRef, subject: string, digest: string): Promise<boolean>;

  /** Repositories that hold anything (a tag or a link), sorted by upstream then path. */
  listRepositories(): Promise<RepositoryRef[]>;

  putUpload(session: UploadSession): Promise<void>;
  getUpload(id: string): Promise<UploadSession | undefined>;
  deleteUpload(id: string): Promise<boolean>;
  listUploads(): Promise<UploadSession[]>;

  /** Last access times (epoch ms) by access key, as saved. */
  loadAccessTimes(): Promise<Map<string, number>>;
  /** Saves access times (merged over what is saved) and drops `forgotten` keys. */
  saveAccessTimes(times: ReadonlyMap<string, number>, forgotten?: Iterable<string>): Promise<void>;

  /** Takes the lease when nobody holds it (or its holder let it expire); undefined when held. */
  acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease | undefined>;
}
