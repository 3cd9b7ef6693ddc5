import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { MirrorgateError } from '../../common/errors.js';
import type { ByteRange } from '../store/types.js';

/**
 * Streams an upstream blob to one client without caching it (used when the cache's disk is full). Every
 * byte is hashed; only the requested range is passed on; the last byte passed on is held back until the
 * whole blob has been verified, so a corrupt or short blob never reaches the client as complete.
 */
export class VerifyingSlice extends Transform {
  private readonly hash;
  private offset = 0;
  private held: Buffer | undefined;

  constructor(private readonly digest: string, private readonly size: number | undefined, private readonly range?: ByteRange) {
    super();
    this.hash = createHash(digest.slice(0, digest.indexOf(':')));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    const start = this.offset;
    this.offset += chunk.length;
    const from = Math.max(start, this.range?.start ?? 0);
    const to = Math.min(this.offset, this.range ? this.range.end + 1 : this.offset);
    if (to > from) {
      const part = chunk.subarray(from - start, to - start);
      const out = this.held ? Buffer.concat([this.held, part]) : part;
      // Keep the final byte back: pass everything but the last byte seen so far.
      this.push(out.subarray(0, out.length - 1));
      this.held = out.subarray(out.length - 1);
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    const actual = `${this.digest.slice(0, this.digest.indexOf(':'))}:${this.hash.digest('hex')}`;
    if (actual !== this.digest || (this.size !== undefined && this.offset !== this.size)) {
      cb(new MirrorgateError('UPSTREAM_INVALID_CONTENT', `upstream blob ${this.digest} failed verification (got ${actual}, ${this.offset} bytes)`));
      return;
    }
    if (this.held) this.push(this.held);
    cb();
  }
}
