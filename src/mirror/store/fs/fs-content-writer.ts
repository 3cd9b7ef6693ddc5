import { createHash, randomBytes, type Hash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { MirrorgateError, fail } from '../../../common/errors.js';
import { parseDigest } from '../../../reference/grammar.js';
import type { ContentWriter, PartialReader } from '../content-store.js';
import type { BlobInfo } from '../types.js';

/** Temp files of content writes: `<kind>-<epoch ms>-<random>.part` in the storage's tmp directory. */
export const WRITE_SUFFIX = '.part';
const HASH_CHUNK = 1 << 20;

/**
 * Writes content to a temp file, hashing as it goes; `commit` verifies size and digest, syncs, and renames
 * it into place. Emits `progress` after each chunk reaches the file, so readers can follow the temp file
 * while the write is still going (see BlobFetch).
 */
export class FsContentWriter extends EventEmitter implements ContentWriter {
  readonly id: string;
  readonly tempPath: string;
  readonly stream: Writable;
  private fh: FileHandle | undefined;
  private readonly hash: Hash;
  private readonly algorithm: string;
  /** Bytes in the file with no hole before them (what readers may read). */
  private bytes = 0;
  /** Bytes handed to writes so far (hashed already). */
  private reserved = 0;
  /** Completed writes beyond the contiguous prefix: start -> end. */
  private readonly finished = new Map<number, number>();
  private settled: 'committed' | 'cancelled' | undefined;
  private closing: Promise<void> | undefined;

  /** Where a commit puts the file; set just before the rename. */
  private target: string | undefined;

  private constructor(tempPath: string, fh: FileHandle, hash: Hash, algorithm: string, written: number, private readonly finalPathOf: (digest: string) => string) {
    super();
    this.id = path.basename(tempPath, WRITE_SUFFIX);
    this.tempPath = tempPath;
    this.fh = fh;
    this.algorithm = algorithm;
    this.hash = hash;
    this.bytes = written;
    this.reserved = written;
    this.stream = new Writable({
      highWaterMark: 1 << 20,
      write: (chunk: Buffer, _enc, cb) => {
        this.writeChunk(chunk).then(() => cb(), cb);
      },
      writev: (chunks, cb) => {
        this.writeChunk(Buffer.concat(chunks.map((c) => c.chunk as Buffer))).then(() => cb(), cb);
      },
    });
  }

  static async create(tmpDir: string, prefix: string, finalPathOf: (digest: string) => string, algorithm: string): Promise<FsContentWriter> {
    await mkdir(tmpDir, { recursive: true });
    const tempPath = path.join(tmpDir, `${prefix}-${Date.now()}-${randomBytes(8).toString('hex')}${WRITE_SUFFIX}`);
    const hash = createHash(algorithm);
    const fh = await open(tempPath, 'wx');
    return new FsContentWriter(tempPath, fh, hash, algorithm, 0, finalPathOf);
  }

  /** Opens an existing temp file again, hashing what it holds; undefined when it is gone. */
  static async resume(tempPath: string, finalPathOf: (digest: string) => string, algorithm: string): Promise<FsContentWriter | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(tempPath, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const hash = createHash(algorithm);
      const buf = Buffer.allocUnsafe(HASH_CHUNK);
      let size = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, HASH_CHUNK, size);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
        size += bytesRead;
      }
      return new FsContentWriter(tempPath, fh, hash, algorithm, size, finalPathOf);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  get written(): number {
    return this.bytes;
  }

  get reservedBytes(): number {
    return this.reserved;
  }

  /**
   * A read handle on the write: the temp file while it runs, the committed file after (an open handle keeps
   * reading the same bytes across the rename, and after a delete).
   */
  async openReader(): Promise<PartialReader> {
    const first = this.settled === 'committed' ? this.target! : this.tempPath;
    let fh: FileHandle;
    try {
      fh = await open(first, 'r');
    } catch (err) {
      // Renamed between the check and the open: it is committed now.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !this.target || first === this.target) throw err;
      fh = await open(this.target, 'r');
    }
    return {
      async read(position, length) {
        const buf = Buffer.allocUnsafe(length);
        const { bytesRead } = await fh.read(buf, 0, length, position);
        return bytesRead === length ? buf : buf.subarray(0, bytesRead);
      },
      close: () => fh.close().catch(() => undefined),
    };
  }

  /**
   * Appends bytes directly (no stream), several buffers in one `writev`. Calls may overlap: each call takes
   * the next range of the file and hashes its bytes at once, in call order; `written` and `progress` only
   * ever cover the contiguous prefix whose writes have completed, so readers never see a hole.
   */
  append(chunks: Buffer[]): Promise<void> {
    if (!this.fh) return Promise.reject(fail('BLOB_UPLOAD_INVALID', 'write after the blob writer was closed'));
    let total = 0;
    for (const c of chunks) {
      total += c.length;
      this.hash.update(c);
    }
    const start = this.reserved;
    this.reserved += total;
    return this.writeAt(this.fh, chunks, start, total).then(() => this.completed(start, start + total));
  }

  private async writeAt(fh: FileHandle, chunks: Buffer[], position: number, total: number): Promise<void> {
    let written = 0;
    while (written < total) {
      // writev may write less than asked: continue from where it stopped.
      const { bytesWritten } = await fh.writev(written === 0 ? chunks : sliceFrom(chunks, written), position + written);
      written += bytesWritten;
    }
  }

  /** Records a finished range and advances the contiguous prefix over every range now joined to it. */
  private completed(start: number, end: number): void {
    this.finished.set(start, end);
    let advanced = false;
    for (let next = this.finished.get(this.bytes); next !== undefined; next = this.finished.get(this.bytes)) {
      this.finished.delete(this.bytes);
      this.bytes = next;
      advanced = true;
    }
    if (advanced) this.emit('progress', this.bytes);
  }

  /** Appended bytes are in the temp file once their append resolves: another process resuming reads them there. */
  async flush(): Promise<void> {}

  private writeChunk(chunk: Buffer): Promise<void> {
    return this.append([chunk]);
  }

  async commit(expected: BlobInfo): Promise<BlobInfo> {
    if (this.settled) throw fail('BLOB_UPLOAD_INVALID', `blob writer already ${this.settled}`);
    try {
      if (!this.stream.writableFinished) {
        if (!this.stream.writableEnded) this.stream.end();
        await once(this.stream, 'finish');
      }
      const want = parseDigest(expected.digest);
      if (!want || want.algorithm !== this.algorithm) throw fail('DIGEST_INVALID', `cannot verify ${expected.digest} with ${this.algorithm}`);
      if (this.reserved !== this.bytes) throw fail('BLOB_UPLOAD_INVALID', 'commit while writes are still in progress');
      if (expected.size >= 0 && this.bytes !== expected.size) {
        throw new MirrorgateError('SIZE_INVALID', `got ${this.bytes} bytes, expected ${expected.size}`, { detail: { digest: expected.digest } });
      }
      const actual = `${this.algorithm}:${this.hash.digest('hex')}`;
      if (actual !== expected.digest) {
        throw new MirrorgateError('DIGEST_INVALID', `content digest ${actual} does not match ${expected.digest}`, { detail: { digest: expected.digest } });
      }
      // Verified: readers following the temp file may have their last byte now, without waiting for the sync.
      this.emit('verified');
      // Durable before visible: a crash after the rename must not leave a short file under a digest name.
      await this.fh!.datasync();
      await this.close();
      const finalPath = this.finalPathOf(expected.digest);
      await mkdir(path.dirname(finalPath), { recursive: true });
      this.target = finalPath;
      await rename(this.tempPath, finalPath);
      this.settled = 'committed';
      this.emit('committed');
      return { digest: expected.digest, size: this.bytes };
    } catch (err) {
      await this.cancel();
      throw err;
    }
  }

  async cancel(): Promise<void> {
    if (this.settled) return;
    this.settled = 'cancelled';
    if (!this.stream.destroyed) this.stream.destroy();
    await this.close();
    await rm(this.tempPath, { force: true });
    this.emit('cancelled');
  }

  /** Closes the file, leaving it for the process that goes on with the write (`resume`). */
  async detach(): Promise<void> {
    if (!this.stream.destroyed) this.stream.destroy();
    await this.close();
  }

  private close(): Promise<void> {
    this.closing ??= (async () => {
      const fh = this.fh;
      this.fh = undefined;
      await fh?.close().catch(() => undefined);
    })();
    return this.closing;
  }
}

/** The buffers from byte `offset` of their concatenation on. */
function sliceFrom(chunks: Buffer[], offset: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = offset;
  for (const c of chunks) {
    if (skip >= c.length) {
      skip -= c.length;
      continue;
    }
    out.push(skip > 0 ? c.subarray(skip) : c);
    skip = 0;
  }
  return out;
}
