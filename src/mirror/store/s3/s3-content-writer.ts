import { createHash, type Hash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { MirrorgateError, fail } from '../../../common/errors.js';
import { parseDigest } from '../../../reference/grammar.js';
import type { ContentWriter, PartialReader } from '../content-store.js';
import type { BlobInfo } from '../types.js';
import { composeObject, type Segment } from './compose.js';
import { ObjectCursor } from './object-cursor.js';
import { PartBuffer } from './part-buffer.js';
import type { ContentKind, S3Keys } from './s3-keys.js';
import type { S3Objects } from './s3-objects.js';

/** What the writers of one store share with it. */
export interface WriterContext {
  objects: S3Objects;
  keys: S3Keys;
  kind: ContentKind;
  /** Bytes held in memory per write before they are stored as one segment. */
  partSize: number;
  /** The writes of this process by id: the store lists them (with the bytes still in memory) and resumes them. */
  writers: Map<string, S3ContentWriter>;
  /** Multipart uploads of commits under way here (not abandoned ones). */
  uploads: Set<string>;
}

type State = 'open' | 'detached' | 'committing' | 'committed' | 'cancelled';

/**
 * A write to object storage, verified before it becomes visible. Bytes are hashed as they are appended and
 * gathered in memory, one part at most (`partSize`); each full part is stored as an object of its own
 * under `uploads/<id>/`, so that what was written can be read back while the write goes on (openReader),
 * and hashed again after a restart (resume). `commit` checks size and digest and only then composes the
 * item under its digest's key in one step (see composeObject); on a mismatch nothing is written and the
 * parts are deleted.
 *
 * The bytes still in memory are readable in this process only, and lost if it dies: a resumed write goes
 * on from the end of its last stored part.
 */
export class S3ContentWriter extends EventEmitter implements ContentWriter {
  readonly stream: Writable;
  private readonly buf: PartBuffer;
  private readonly segments: Segment[];
  /** End of the stored segments; the buffer holds the bytes after it. */
  private durable: number;
  private reserved: number;
  /** Appends in call order: each one's bytes go to the buffer (and full parts to the store) in turn. */
  private chain: Promise<void> = Promise.resolve();
  /** A part failed to store: the write cannot go on. */
  private broken: Error | undefined;
  private state: State = 'open';
  private committing: Promise<BlobInfo> | undefined;
  /** Set by the commit: readers opened after the parts are gone read the item. */
  private finalKey: string | undefined;
  private readers = 0;
  /** The parts and the buffer are kept after the commit while readers opened before it are open. */
  private retained = false;
  private lastWrite = Date.now();

  constructor(
    private readonly ctx: WriterContext,
    readonly id: string,
    private readonly algorithm: string,
    private readonly hash: Hash,
    stored: Segment[],
  ) {
    super();
    this.buf = new PartBuffer(ctx.partSize);
    this.segments = stored;
    this.durable = stored.reduce((n, s) => n + s.size, 0);
    this.reserved = this.durable;
    this.stream = new Writable({
      highWaterMark: 1 << 20,
      write: (chunk: Buffer, _enc, cb) => {
        this.append([chunk]).then(() => cb(), cb);
      },
      writev: (chunks, cb) => {
        this.append(chunks.map((c) => c.chunk as Buffer)).then(() => cb(), cb);
      },
    });
    ctx.writers.set(id, this);
  }

  /** A new write: nothing stored yet. */
  static create(ctx: WriterContext, id: string, algorithm: string): S3ContentWriter {
    return new S3ContentWriter(ctx, id, algorithm, createHash(algorithm), []);
  }

  /**
   * A write taken up again from its stored segments (contiguous from offset 0), hashed again by streaming
   * them back. Undefined when nothing of it is stored. Segments after a gap cannot belong to the write
   * and are deleted.
   */
  static async resume(ctx: WriterContext, id: string, algorithm: string): Promise<S3ContentWriter | undefined> {
    const found: Segment[] = [];
    const strays: string[] = [];
    let end = 0;
    for await (const o of ctx.objects.list(ctx.keys.writePrefix(id))) {
      const parsed = o.Key ? ctx.keys.parseSegmentKey(o.Key) : undefined;
      if (!parsed || parsed.id !== id) continue;
      if (parsed.offset !== end || !o.Size || strays.length > 0) {
        strays.push(o.Key!);
        continue;
      }
      found.push({ key: o.Key!, offset: parsed.offset, size: o.Size, etag: o.ETag ?? '' });
      end += o.Size;
    }
    await ctx.objects.deleteAll(strays);
    if (found.length === 0) return undefined;
    const hash = createHash(algorithm);
    for (const seg of found) {
      const got = await ctx.objects.get(seg.key);
      if (!got) return undefined; // swept meanwhile
      let n = 0;
      for await (const chunk of got.body as AsyncIterable<Buffer>) {
        hash.update(chunk);
        n += chunk.length;
      }
      if (n !== seg.size) throw fail('BLOB_UPLOAD_INVALID', `stored part ${seg.key} changed while it was read`);
    }
    return new S3ContentWriter(ctx, id, algorithm, hash, found);
  }

  get written(): number {
    return this.durable + this.buf.length;
  }

  get reservedBytes(): number {
    return this.reserved;
  }

  /** Epoch ms of the last write to it. */
  get modifiedAt(): number {
    return this.lastWrite;
  }

  /** Still being written here (not committed, cancelled or taken over by a resume). */
  get open(): boolean {
    return this.state === 'open';
  }

  append(chunks: Buffer[]): Promise<void> {
    if (this.state !== 'open') return Promise.reject(fail('BLOB_UPLOAD_INVALID', `write after the blob writer was ${this.state}`));
    for (const c of chunks) {
      this.hash.update(c);
      this.reserved += c.length;
    }
    const done = this.chain.then(() => this.absorb(chunks));
    this.chain = done.catch(() => undefined);
    return done;
  }

  /** Copies the chunks into the buffer, storing each part that fills up (appends wait for that). */
  private async absorb(chunks: Buffer[]): Promise<void> {
    let grew = false;
    for (const chunk of chunks) {
      for (let at = 0; at < chunk.length; ) {
        if (this.broken) throw this.broken;
        if (this.state === 'cancelled') throw fail('BLOB_UPLOAD_INVALID', 'the blob writer was cancelled');
        if (this.buf.full) {
          // What is in the buffer is readable already: say so before waiting for the store.
          if (grew) this.emit('progress', this.written);
          grew = false;
          await this.storeBuffer();
          continue;
        }
        const n = this.buf.take(chunk, at);
        at += n;
        grew ||= n > 0;
      }
    }
    this.lastWrite = Date.now();
    if (grew) this.emit('progress', this.written);
  }

  /** Stores what the buffer holds as a segment of its own (smaller than a part; the commit merges such segments). */
  flush(): Promise<void> {
    const done = this.chain.then(async () => {
      if (this.state === 'open' && !this.broken && this.buf.length > 0) await this.storeBuffer();
    });
    this.chain = done.catch(() => undefined);
    return done;
  }

  /** Stores the buffer as the next segment. */
  private async storeBuffer(): Promise<void> {
    const offset = this.durable;
    const key = this.ctx.keys.segmentKey(this.id, offset);
    try {
      const etag = await this.ctx.objects.put(key, this.buf.view(), this.buf.contentMd5());
      this.segments.push({ key, offset, size: this.buf.length, etag });
      this.durable += this.buf.length;
      this.buf.clear();
      this.lastWrite = Date.now();
    } catch (err) {
      this.broken = err as Error;
      throw err;
    }
  }

  /**
   * Reads back what was written: stored segments by ranged GETs, the rest from the buffer. A reader opened
   * before the commit reads on after it (and after a delete of the item): the parts are kept until the last
   * such reader closes.
   */
  async openReader(): Promise<PartialReader> {
    if (this.state === 'cancelled') throw fail('BLOB_UPLOAD_UNKNOWN', 'the write was cancelled');
    const cursor = new ObjectCursor(this.ctx.objects);
    if (this.state === 'committed' && !this.retained) {
      const key = this.finalKey!;
      const size = this.written;
      return {
        read: async (position, length) => cursor.read(key, position, Math.max(0, Math.min(size, position + length) - position), size),
        close: async () => cursor.close(),
      };
    }
    this.readers++;
    let closed = false;
    return {
      read: (position, length) => this.readAt(cursor, position, length),
      close: async () => {
        if (closed) return;
        closed = true;
        cursor.close();
        this.readers--;
        if (this.readers === 0 && this.retained) await this.dropParts();
      },
    };
  }

  private async readAt(cursor: ObjectCursor, position: number, length: number): Promise<Buffer> {
    const out: Buffer[] = [];
    const end = position + length;
    for (let at = position; at < end; ) {
      if (at >= this.durable) {
        // Checked and copied in one go: a segment stored meanwhile only moves where later bytes are read.
        const got = this.buf.read(at - this.durable, end - at);
        if (got.length === 0) break;
        out.push(got);
        at += got.length;
        continue;
      }
      const seg = this.segmentAt(at);
      const stop = Math.min(end, seg.offset + seg.size);
      out.push(await cursor.read(seg.key, at - seg.offset, stop - at, seg.size));
      at = stop;
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** The stored segment holding byte `position` (below `durable`). */
  private segmentAt(position: number): Segment {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.segments[mid]!.offset <= position) lo = mid;
      else hi = mid - 1;
    }
    return this.segments[lo]!;
  }

  commit(expected: BlobInfo): Promise<BlobInfo> {
    if (this.state !== 'open' || this.committing) return Promise.reject(fail('BLOB_UPLOAD_INVALID', `blob writer already ${this.committing && this.state === 'open' ? 'committing' : this.state}`));
    this.committing = this.verifyAndCompose(expected);
    return this.committing;
  }

  private async verifyAndCompose(expected: BlobInfo): Promise<BlobInfo> {
    try {
      if (!this.stream.writableEnded) this.stream.end();
      await finished(this.stream);
      await this.chain;
      if (this.broken) throw this.broken;
      const want = parseDigest(expected.digest);
      if (!want || want.algorithm !== this.algorithm) throw fail('DIGEST_INVALID', `cannot verify ${expected.digest} with ${this.algorithm}`);
      if (this.reserved !== this.written) throw fail('BLOB_UPLOAD_INVALID', 'commit while writes are still in progress');
      const size = this.written;
      if (expected.size >= 0 && size !== expected.size) {
        throw new MirrorgateError('SIZE_INVALID', `got ${size} bytes, expected ${expected.size}`, { detail: { digest: expected.digest } });
      }
      const actual = `${this.algorithm}:${this.hash.digest('hex')}`;
      if (actual !== expected.digest) {
        throw new MirrorgateError('DIGEST_INVALID', `content digest ${actual} does not match ${expected.digest}`, { detail: { digest: expected.digest } });
      }
      this.state = 'committing';
      // Verified: readers following the write may have their last byte now, before the item is composed.
      this.emit('verified');
      const key = this.ctx.keys.contentKey(this.ctx.kind, expected.digest);
      // Content is addressed by digest: an item already there (another writer's) is this one.
      if ((await this.ctx.objects.head(key))?.size !== size) {
        await composeObject(this.ctx.objects, key, {
          segments: this.segments,
          tail: this.buf.view(),
          tailMd5: this.buf.contentMd5(),
          partSize: this.ctx.partSize,
          uploads: this.ctx.uploads,
        });
      }
      this.finalKey = key;
      this.state = 'committed';
      if (this.readers > 0) this.retained = true;
      else await this.dropParts();
      this.emit('committed');
      return { digest: expected.digest, size };
    } catch (err) {
      await this.drop();
      throw err;
    }
  }

  /** After the commit: the parts and the buffer are no longer needed. */
  private async dropParts(): Promise<void> {
    this.retained = false;
    this.buf.release();
    this.forget();
    await this.ctx.objects.deleteAll(this.segments.map((s) => s.key));
  }

  async cancel(): Promise<void> {
    if (this.committing) {
      // A commit waiting for the stream to finish is cut short; one past verification runs to its end.
      if (this.state === 'open') this.stream.destroy();
      await this.committing.catch(() => undefined);
      return;
    }
    if (this.state === 'committed' || this.state === 'cancelled') return;
    await this.drop();
  }

  /**
   * Hands the write over to a resume: the bytes in memory are stored as a segment of their own, and this
   * writer takes no more bytes. (Its `cancel` still drops the write, as a file writer's removes the file.)
   */
  async detach(): Promise<void> {
    if (this.state !== 'open' || this.committing) return;
    this.state = 'detached';
    await this.chain;
    this.forget();
    if (!this.broken && this.buf.length > 0) await this.storeBuffer();
  }

  /** Drops the write: everything stored under its id, and the buffer. */
  private async drop(): Promise<void> {
    this.state = 'cancelled';
    if (!this.stream.destroyed) this.stream.destroy();
    await this.chain;
    this.buf.release();
    this.forget();
    const keys: string[] = [];
    for await (const o of this.ctx.objects.list(this.ctx.keys.writePrefix(this.id))) if (o.Key) keys.push(o.Key);
    await this.ctx.objects.deleteAll(keys);
    this.emit('cancelled');
  }

  private forget(): void {
    if (this.ctx.writers.get(this.id) === this) this.ctx.writers.delete(this.id);
  }
}
