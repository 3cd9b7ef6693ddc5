import type { ContentStore } from './content-store.js';
import type { MetadataStore } from './metadata-store.js';

/** Who holds storage for a long stretch: a running mirror, or the offline `mirrorgate gc`. */
export type StorageOwner = 'mirror' | 'gc';

/** A claim on the whole storage, held by a mirror for its lifetime or by `mirrorgate gc` for one pass. */
export interface StorageClaim {
  heartbeat(): Promise<void>;
  release(): Promise<void>;
}

export interface StorageHolder {
  owner: StorageOwner;
  pid: number;
  hostname: string;
  since: number;
}

/**
 * The mirror's storage: two content stores (blobs; manifest bytes) and one metadata store, plus what a
 * storage backend as a whole must answer: is it usable, how much room is left, who else uses it.
 */
export interface Storage {
  readonly blobs: ContentStore;
  readonly manifests: ContentStore;
  readonly metadata: MetadataStore;
  /** Where it is, for logs and messages. */
  readonly description: string;
  /** Checks the storage is usable and clears what a crash of an earlier run left; returns what was swept. */
  prepare(): Promise<{ swept: number }>;
  /** Bytes free for new content, when the backend can tell. */
  freeSpace(): Promise<number | undefined>;
  /** Claims the storage; STORAGE_LOCKED when the claim conflicts with a live holder (unless forced). */
  claim(owner: StorageOwner, opts?: { force?: boolean }): Promise<StorageClaim>;
  /** The live holder of the storage, if any. */
  holder(): Promise<StorageHolder | undefined>;
  /**
   * Where a client may GET a stored blob straight from the backend (a presigned URL, answered as a `307`),
   * or undefined when blobs are streamed through the mirror; absent on backends that never hand out URLs.
   * The caller has checked that the blob may be served and is stored.
   */
  blobRedirectUrl?(digest: string): Promise<string | undefined>;
  /**
   * The URI a front server maps to the stored blob's file (`X-Accel-Redirect`, answered with no body), or
   * undefined when the file is not there; absent unless `storage.accelRedirect` is configured (filesystem
   * storage only). The caller has checked that the blob may be served.
   */
  blobAccelPath?(digest: string): Promise<string | undefined>;
  /** Closes connections the storage holds open (Redis); absent when it holds none. */
  close?(): Promise<void>;
}
