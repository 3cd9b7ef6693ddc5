import type { Readable } from 'node:stream';
import { storageError } from './s3-errors.js';
import type { S3Objects } from './s3-objects.js';

/**
 * Sequential reads of objects through one streamed GET kept open between reads: a reader that goes on
 * where it stopped costs no new request (a client following a write reads it in small steps). A read
 * anywhere else starts a new GET from there to `end`. Holds at most one chunk beyond what was asked for.
 */
export class ObjectCursor {
  private body: Readable | undefined;
  private chunks: AsyncIterator<Buffer> | undefined;
  private key: string | undefined;
  private at = 0;
  private leftover: Buffer | undefined;

  constructor(private readonly objects: S3Objects) {}

  /** Exactly `length` bytes of `key` from `offset`; `end` (exclusive) bounds the GET a new stream makes. */
  async read(key: string, offset: number, length: number, end: number): Promise<Buffer> {
    if (length <= 0) return Buffer.alloc(0);
    if (this.key !== key || this.at !== offset || !this.chunks) await this.open(key, offset, end);
    const out: Buffer[] = [];
    let n = 0;
    try {
      while (n < length) {
        let chunk = this.leftover;
        this.leftover = undefined;
        if (!chunk) {
          const next = await this.chunks!.next();
          if (next.done) break;
          chunk = next.value;
        }
        const take = Math.min(chunk.length, length - n);
        out.push(take === chunk.length ? chunk : chunk.subarray(0, take));
        if (take < chunk.length) this.leftover = chunk.subarray(take);
        n += take;
      }
    } catch (err) {
      this.close();
      throw storageError(err, `GET ${key}`);
    }
    this.at += n;
    if (n < length) {
      this.close();
      throw storageError(new Error(`got ${n} of ${length} bytes`), `GET ${key}`);
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  close(): void {
    this.body?.destroy();
    this.body = undefined;
    this.chunks = undefined;
    this.key = undefined;
    this.leftover = undefined;
  }

  private async open(key: string, offset: number, end: number): Promise<void> {
    this.close();
    const got = await this.objects.get(key, { start: offset, end: end - 1 });
    if (!got) throw storageError(new Error('the object is gone'), `GET ${key}`);
    this.body = got.body;
    this.chunks = (got.body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    this.key = key;
    this.at = offset;
  }
}
