import type { Readable, Writable } from 'node:stream';
import type { BlobInfo, ByteRange, RangeRequest } from './types.js';

/** A content item as listed: what the cache lifecycle needs to decide about it. */
export interface ContentEntry {
  digest: string;
  size: number;
  /** Epoch ms when it was stored. */
  storedAt: number;
}

export interface ContentRead {
  info: BlobInfo;
  /** The bytes (the whole item, or the requested range). Destroy it if you stop reading. */
  body: Readable;
  /** The range served, when one was asked for. */
  range?: ByteRange;
}

/** Reads the bytes of a write in progress (and, once it is committed, of the committed item). */
export interface PartialReader {
  /** Up to `length` bytes from `position`; only bytes below the writer's `written` may be asked for. */
  read(position: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * One write of content whose digest is checked before it becomes visible. Bytes are hashed as they are
 * appended; `commit` verifies size and digest and only then makes the item readable by digest.
 *
 * Events: `progress` (written bytes grew), `verified` (size and digest checked, not yet visible),
 * `committed`, `cancelled`.
 */
export interface ContentWriter {
  /** Names the write among the store's writes in progress (stale-write sweeps, resumed uploads). */
  readonly id: string;
  /** Bytes readers may read: the contiguous prefix whose writes have completed. */
  readonly written: number;
  /** Bytes handed to writes so far, including those still in flight. */
  readonly reservedBytes: number;
  /** A writable view for `pipeline`; each chunk is appended in order. */
  readonly stream: Writable;
  /** Appends bytes; calls may overlap, each takes the next range in call order. */
  append(chunks: Buffer[]): Promise<void>;
  /** Reads back what was written so far, while the write goes on. */
  openReader(): Promise<PartialReader>;
  /**
   * Makes every byte appended so far durable where another process resuming the write (`resume`) finds it:
   * what a store holds in memory is stored. Uploads do it after each request, so the next request of a push
   * may go to another replica.
   */
  flush(): Promise<void>;
  /** Verifies size (when `expected.size >= 0`) and digest, then makes the item visible. */
  commit(expected: BlobInfo): Promise<BlobInfo>;
  /**
   * Lets go of the write without dropping it, since another process went on with it (an upload's next
   * request on another worker); where there is nothing to let go of, absent.
   */
  detach?(): Promise<void>;
  /** Drops the write. Safe to call twice, and after commit (then it does nothing). */
  cancel(): Promise<void>;
  on(event: 'progress', listener: (written: number) => void): this;
  once(event: 'verified' | 'committed' | 'cancelled', listener: () => void): this;
}

/** A write in progress as the store lists it, for sweeps of what a crash left behind. */
export interface PendingWrite {
  id: string;
  size: number;
  /** Epoch ms of the last write to it. */
  modifiedAt: number;
}

/**
 * Immutable content addressed by digest: blobs, or manifest bytes. An item, once visible, never changes;
 * it may be deleted (by the cache lifecycle). Content is stored once however many repositories hold it:
 * which repository holds what is the metadata store's business.
 */
export interface ContentStore {
  stat(digest: string): Promise<BlobInfo | undefined>;
  /** The bytes (or a range of them), or undefined when not held. RANGE_INVALID when unsatisfiable. */
  open(digest: string, range?: RangeRequest): Promise<ContentRead | undefined>;
  /** A new write of content that should hash to `digest` (its algorithm is used for the hash). */
  writer(digest: string): Promise<ContentWriter>;
  /**
   * Takes up a write in progress again by its id (after a restart, say): what it holds is hashed again and
   * appends continue from its end. Undefined when there is no such write (swept, committed, cancelled).
   */
  resume(id: string, digest: string): Promise<ContentWriter | undefined>;
  /** Writes in progress or left behind by a crash. */
  listWrites(): Promise<PendingWrite[]>;
  /** Drops a write left behind (not one this process is writing: callers check). */
  deleteWrite(id: string): Promise<void>;
  /** Removes an item; false when it was not there. Readers that already opened it may finish. */
  delete(digest: string): Promise<boolean>;
  /** Items in digest order, after `after` (exclusive), at most `limit`. */
  list(opts?: { after?: string; limit?: number }): Promise<ContentEntry[]>;
}
