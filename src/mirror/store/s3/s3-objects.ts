import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { S3Client, _Object } from '@aws-sdk/client-s3';
import { isNotFound, storageError } from './s3-errors.js';
import { s3Sdk } from './sdk.js';

/** Deletes sent at once (one request per key: multi-object delete needs a checksum old gateways refuse). */
const DELETE_CONCURRENCY = 8;

export interface ObjectInfo {
  size: number;
  etag: string;
  lastModified: number;
}

/** Small helpers over one bucket: every S3 failure comes out as a storageError naming what failed. */
export class S3Objects {
  constructor(
    readonly s3: S3Client,
    readonly bucket: string,
  ) {}

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const res = await this.s3.send(new (s3Sdk().HeadObjectCommand)({ Bucket: this.bucket, Key: key }));
      return { size: res.ContentLength ?? 0, etag: res.ETag ?? '', lastModified: res.LastModified?.getTime() ?? Date.now() };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw storageError(err, `HEAD ${key}`);
    }
  }

  /** A streamed GET (of an inclusive byte range, when given); undefined when the key is not there. */
  async get(key: string, range?: { start: number; end: number }): Promise<{ body: Readable; size: number } | undefined> {
    try {
      const res = await this.s3.send(new (s3Sdk().GetObjectCommand)({ Bucket: this.bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }));
      return { body: res.Body as Readable, size: res.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw storageError(err, `GET ${key}`);
    }
  }

  /** Exactly the bytes `start..end` (inclusive) of an object that must be there. */
  async readRange(key: string, start: number, end: number): Promise<Buffer> {
    const got = await this.get(key, { start, end });
    if (!got) throw storageError(new Error('the object is gone'), `GET ${key}`);
    const out = Buffer.allocUnsafe(end - start + 1);
    let n = 0;
    try {
      for await (const chunk of got.body as AsyncIterable<Buffer>) {
        if (n + chunk.length > out.length) throw new Error('more bytes than asked for');
        chunk.copy(out, n);
        n += chunk.length;
      }
    } catch (err) {
      throw storageError(err, `GET ${key}`);
    }
    if (n !== out.length) throw storageError(new Error(`got ${n} of ${out.length} bytes`), `GET ${key}`);
    return out;
  }

  /**
   * PUT from memory, with its Content-MD5 (the store checks the bytes it got; computed here when the
   * caller has not kept it as the bytes came). Returns the ETag.
   */
  async put(key: string, body: Buffer, contentMd5 = createHash('md5').update(body).digest('base64')): Promise<string> {
    try {
      const res = await this.s3.send(new (s3Sdk().PutObjectCommand)({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length, ContentMD5: contentMd5 }));
      return res.ETag ?? '';
    } catch (err) {
      throw storageError(err, `PUT ${key}`);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.s3.send(new (s3Sdk().DeleteObjectCommand)({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (!isNotFound(err)) throw storageError(err, `DELETE ${key}`);
    }
  }

  async deleteAll(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_CONCURRENCY) {
      await Promise.all(keys.slice(i, i + DELETE_CONCURRENCY).map((k) => this.delete(k)));
    }
  }

  /**
   * Objects under `prefix` in key order, after `startAfter`, page by page as the caller consumes them
   * (`pageSize` keys a request: a caller that wants a few asks for a few).
   */
  async *list(prefix: string, opts: { startAfter?: string; pageSize?: number } = {}): AsyncGenerator<_Object> {
    let token: string | undefined;
    for (;;) {
      let res;
      try {
        res = await this.s3.send(
          new (s3Sdk().ListObjectsV2Command)({
            Bucket: this.bucket,
            Prefix: prefix,
            MaxKeys: Math.min(1000, opts.pageSize ?? 1000),
            ...(token ? { ContinuationToken: token } : opts.startAfter ? { StartAfter: opts.startAfter } : {}),
          }),
        );
      } catch (err) {
        throw storageError(err, `LIST ${prefix}`);
      }
      yield* res.Contents ?? [];
      if (!res.IsTruncated || !res.NextContinuationToken) return;
      token = res.NextContinuationToken;
    }
  }
}
