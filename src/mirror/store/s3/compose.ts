import type { CompletedPart } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { MirrorgateError } from '../../../common/errors.js';
import { storageError } from './s3-errors.js';
import type { S3Objects } from './s3-objects.js';
import { s3Sdk } from './sdk.js';

/** S3's smallest part (all but the last), and its most parts per upload. */
const MIN_PART_BYTES = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;
/** Part copies and uploads in flight at once during one commit. */
const PART_CONCURRENCY = 4;

/** One stored piece of a write in progress: an object of its own under `uploads/`. */
export interface Segment {
  key: string;
  offset: number;
  size: number;
  etag: string;
}

export interface ComposeInput {
  segments: readonly Segment[];
  /** The bytes after the last segment, from memory. */
  tail: Buffer;
  /** Content-MD5 of `tail`. */
  tailMd5: string;
  /** Bytes of one part when segments must be read back and merged. */
  partSize: number;
  /** Told of a multipart upload while it exists, so listings of abandoned ones leave it alone. */
  uploads: Set<string>;
}

/**
 * Makes `key` hold the segments' bytes followed by the tail, all at once: a reader sees the whole object
 * or nothing. One PUT when there is no segment, one copy for a single one, otherwise a multipart upload of
 * server-side part copies (`UploadPartCopy`, each guarded by the segment's ETag so only the bytes this write
 * hashed are used). Segments under S3's 5 MiB minimum (made by a resume) are read back and merged; the tail
 * is uploaded as the last part. On any failure the multipart upload is aborted and nothing is visible.
 */
export async function composeObject(objects: S3Objects, key: string, input: ComposeInput): Promise<void> {
  const { segments, tail } = input;
  if (segments.length === 0) {
    await objects.put(key, tail, input.tailMd5);
    return;
  }
  if (segments.length === 1 && tail.length === 0) {
    const seg = segments[0]!;
    try {
      await objects.s3.send(new (s3Sdk().CopyObjectCommand)({ Bucket: objects.bucket, Key: key, CopySource: copySource(objects.bucket, seg.key), CopySourceIfMatch: seg.etag }));
    } catch (err) {
      throw storageError(err, `COPY ${seg.key} to ${key}`);
    }
    return;
  }
  await composeMultipart(objects, key, input);
}

async function composeMultipart(objects: S3Objects, key: string, input: ComposeInput): Promise<void> {
  const { s3, bucket } = objects;
  const expected = input.segments.reduce((n, s) => n + s.size, 0) + input.tail.length;
  let uploadId: string;
  try {
    uploadId = (await s3.send(new (s3Sdk().CreateMultipartUploadCommand)({ Bucket: bucket, Key: key }))).UploadId!;
  } catch (err) {
    throw storageError(err, `starting the multipart upload of ${key}`);
  }
  input.uploads.add(uploadId);
  const limit = limiter(PART_CONCURRENCY);
  const parts: Promise<CompletedPart>[] = [];
  const addPart = (send: (partNumber: number) => Promise<string | undefined>): void => {
    const PartNumber = parts.length + 1;
    if (PartNumber > MAX_PARTS) throw new MirrorgateError('UNSUPPORTED', `${key} needs more than ${MAX_PARTS} parts: raise mirror.storage.s3.partSize`);
    const part = limit(() => send(PartNumber)).then((ETag) => ({ PartNumber, ETag }));
    part.catch(() => undefined); // observed by Promise.all below
    parts.push(part);
  };
  const upload = (body: Buffer, md5: string) => (PartNumber: number) =>
    s3.send(new (s3Sdk().UploadPartCommand)({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber, Body: body, ContentLength: body.length, ContentMD5: md5 })).then((r) => r.ETag);
  const copy = (seg: Segment, start: number) => (PartNumber: number) =>
    s3
      .send(
        new (s3Sdk().UploadPartCopyCommand)({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber,
          CopySource: copySource(bucket, seg.key),
          CopySourceIfMatch: seg.etag,
          ...(start > 0 ? { CopySourceRange: `bytes=${start}-${seg.size - 1}` } : {}),
        }),
      )
      .then((r) => r.CopyPartResult?.ETag);
  try {
    // Bytes read back from small segments, waiting to make up a part of at least the minimum size.
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flushPending = (): void => {
      const body = Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      addPart(upload(body, createHash('md5').update(body).digest('base64')));
    };
    for (const seg of input.segments) {
      let at = 0;
      while (at < seg.size) {
        if (pendingBytes === 0 && seg.size - at >= MIN_PART_BYTES) {
          addPart(copy(seg, at));
          break;
        }
        const take = Math.min(seg.size - at, input.partSize - pendingBytes);
        pending.push(await objects.readRange(seg.key, at, at + take - 1));
        pendingBytes += take;
        at += take;
        if (pendingBytes >= MIN_PART_BYTES) flushPending();
      }
    }
    if (pendingBytes === 0 && input.tail.length > 0) addPart(upload(input.tail, input.tailMd5));
    else if (pendingBytes > 0) {
      pending.push(input.tail);
      flushPending();
    }
    const done = await Promise.all(parts);
    await s3.send(new (s3Sdk().CompleteMultipartUploadCommand)({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: done } }));
  } catch (err) {
    await Promise.allSettled(parts);
    await s3.send(new (s3Sdk().AbortMultipartUploadCommand)({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
    throw storageError(err, `the multipart upload of ${key}`);
  } finally {
    input.uploads.delete(uploadId);
  }
  // The parts were checked one by one; the whole is checked once more, and removed if it is not right.
  const made = await objects.head(key);
  if (made?.size !== expected) {
    await objects.delete(key);
    throw storageError(new Error(`the completed object has ${made?.size ?? 'no'} bytes, not ${expected}`), `the multipart upload of ${key}`);
  }
}

/** `bucket/key` as x-amz-copy-source wants it (keys here are of safe characters; encoded anyway). */
function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/** Runs at most `n` of the given tasks at once, in the order they were given. */
function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    if (running >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await task();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}
