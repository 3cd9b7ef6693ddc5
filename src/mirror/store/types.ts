import type { Readable } from 'node:stream';

/**
 * The storage interfaces are the architecture. The local filesystem store and the caching (proxy) store
 * implement the same ones, so the HTTP edge cannot tell a hit from a miss.
 */

/** A repository as the mirror stores it: which upstream it comes from and its path there. */
export interface RepositoryRef {
  /** Upstream key (registry host), e.g. `docker.io`, `ghcr.io`. */
  upstream: string;
  /** Path at that upstream, e.g. `library/nginx`, `org/app`. */
  path: string;
}

export interface BlobInfo {
  digest: string;
  size: number;
}

/** Inclusive byte range, as in HTTP, resolved against the blob's size. */
export interface ByteRange {
  start: number;
  end: number;
}

/** A range as a client asks for it (`bytes=10-`, `bytes=10-20`, `bytes=-500`), before the size is known. */
export type RangeRequest = { start: number; end?: number } | { suffix: number };

export interface BlobContent {
  info: BlobInfo;
  /** The bytes (the whole blob, or the requested range). Destroy it if you stop reading. */
  body: Readable;
  /** The range served, when one was asked for. */
  range?: ByteRange;
}

export interface BlobWriter {
  /** Stream the blob's bytes into it; each write is hashed as it goes. */
  readonly stream: NodeJS.WritableStream;
  /** Bytes written so far. */
  readonly written: number;
  /**
   * Verifies size and digest, then moves the blob into place. Rejects with DIGEST_INVALID or SIZE_INVALID,
   * having removed the temp file, when the bytes are not what was expected.
   */
  commit(expected: BlobInfo): Promise<BlobInfo>;
  /** Drops the temp file. Safe to call twice, and after commit (then it does nothing). */
  cancel(): Promise<void>;
}

export interface BlobStore {
  /** Size of the blob, or undefined when not held. */
  stat(repo: RepositoryRef, digest: string): Promise<BlobInfo | undefined>;
  /** The blob's bytes (or a range of them), or undefined when not held. */
  open(repo: RepositoryRef, digest: string, range?: RangeRequest): Promise<BlobContent | undefined>;
  /**
   * Where the blob's bytes may come from instead of `open`: only when the storage names such places, the
   * repository may serve the blob and it is stored. Undefined otherwise (a cold blob, a blob not held, a
   * storage that streams): then `open` serves it.
   */
  locate(repo: RepositoryRef, digest: string): Promise<BlobLocation | undefined>;
}

/**
 * A stored blob's bytes outside the mirror: a URL the client GETs itself (a presigned URL, for a `307`), or
 * a URI the front server in front of the mirror sends the file of (`X-Accel-Redirect`).
 */
export type BlobLocation = { url: string } | { accelPath: string };

export interface Manifest {
  digest: string;
  mediaType: string;
  /** The exact bytes, as the upstream served them. */
  bytes: Buffer;
}

export interface ManifestDescriptor {
  digest: string;
  mediaType: string;
  size: number;
}

/** A tag's record: what it pointed at, and when that was last confirmed upstream. */
export interface TagRecord extends ManifestDescriptor {
  /** Epoch ms when the upstream last confirmed it. */
  checkedAt: number;
}

/** What a manifest read was asked for: a tag or a digest, and the media types the client accepts. */
export interface ManifestRequest {
  reference: string;
  accept: string[];
}

export interface ManifestStore {
  /** Descriptor only (HEAD). */
  stat(repo: RepositoryRef, request: ManifestRequest): Promise<ManifestDescriptor | undefined>;
  get(repo: RepositoryRef, request: ManifestRequest): Promise<Manifest | undefined>;
}
