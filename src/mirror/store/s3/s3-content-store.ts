import { randomBytes } from 'node:crypto';
import { fail } from '../../../common/errors.js';
import { parseDigest } from '../../../reference/grammar.js';
import type { ContentEntry, ContentRead, ContentStore, PendingWrite } from '../content-store.js';
import { resolveRange } from '../range.js';
import type { BlobInfo, RangeRequest } from '../types.js';
import { S3ContentWriter, type WriterContext } from './s3-content-writer.js';
import { isNotFound, storageError } from './s3-errors.js';
import type { ContentKind, S3Keys } from './s3-keys.js';
import type { S3Objects } from './s3-objects.js';
import { s3Presigner, s3Sdk } from './sdk.js';

export interface S3ContentStoreOptions {
  /** Bytes held in memory per write before they are stored as one part (at least 5 MiB). */
  partSize: number;
}

/**
 * Content addressed by digest in an S3 bucket: `<prefix><kind>/<alg>/<hex>`, written through parts under
 * `<prefix>uploads/` that are verified and composed into place (see S3ContentWriter). Reads are streamed
 * GETs (ranged for ranges); listings are ListObjectsV2 in key order, which is digest order.
 *
 * Write ids are `<kind>-<ms>-<random>` for writes, and `<kind>-mpu-<alg>-<hex>-<upload id>` for the
 * multipart uploads a commit that died left behind (listed so that sweeps can abort them).
 */
export class S3ContentStore implements ContentStore {
  private readonly ctx: WriterContext;

  constructor(
    private readonly objects: S3Objects,
    private readonly keys: S3Keys,
    private readonly kind: ContentKind,
    opts: S3ContentStoreOptions,
  ) {
    this.ctx = { objects, keys, kind, partSize: opts.partSize, writers: new Map(), uploads: new Set() };
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    const info = await this.objects.head(this.keys.contentKey(this.kind, digest));
    return info && { digest, size: info.size };
  }

  async open(digest: string, rangeRequest?: RangeRequest): Promise<ContentRead | undefined> {
    const key = this.keys.contentKey(this.kind, digest);
    if (!rangeRequest) {
      const got = await this.objects.get(key);
      return got && { info: { digest, size: got.size }, body: got.body };
    }
    // The size first, so that the range is resolved (and refused) exactly as every store does.
    const head = await this.objects.head(key);
    if (!head) return undefined;
    const info = { digest, size: head.size };
    const range = resolveRange(rangeRequest, head.size);
    const got = await this.objects.get(key, range);
    return got && { info, body: got.body, range };
  }

  /**
   * A URL that GETs the item straight from the object store for `ttlMs` (signed with the store's
   * credentials; anyone holding it can read that one item until it expires).
   */
  async presignedUrl(digest: string, ttlMs: number): Promise<string> {
    const key = this.keys.contentKey(this.kind, digest);
    return s3Presigner().getSignedUrl(this.objects.s3, new (s3Sdk().GetObjectCommand)({ Bucket: this.objects.bucket, Key: key }), { expiresIn: Math.max(1, Math.round(ttlMs / 1000)) });
  }

  async writer(digest: string): Promise<S3ContentWriter> {
    const algorithm = this.algorithm(digest);
    return S3ContentWriter.create(this.ctx, `${this.kind}-${Date.now()}-${randomBytes(8).toString('hex')}`, algorithm);
  }

  async resume(id: string, digest: string): Promise<S3ContentWriter | undefined> {
    const algorithm = this.algorithm(digest);
    if (this.parseUploadId(id)) return undefined; // a commit's upload: nothing to take up
    this.checkWriteId(id);
    const live = this.ctx.writers.get(id);
    // Committing, or committed with readers still reading its parts: nothing to take up.
    if (live && !live.open) return undefined;
    // A write of this process: the bytes it holds in memory are stored first.
    await live?.detach();
    const resumed = await S3ContentWriter.resume(this.ctx, id, algorithm);
    // One of this process with nothing stored yet is taken up empty.
    return resumed ?? (live ? S3ContentWriter.create(this.ctx, id, algorithm) : undefined);
  }

  async listWrites(): Promise<PendingWrite[]> {
    const out = new Map<string, PendingWrite>();
    for (const [id, w] of this.ctx.writers) if (w.open) out.set(id, { id, size: w.written, modifiedAt: w.modifiedAt });
    for await (const o of this.objects.list(`${this.keys.uploadsPrefix()}${this.kind}-`)) {
      const seg = o.Key ? this.keys.parseSegmentKey(o.Key) : undefined;
      if (!seg || this.ctx.writers.has(seg.id)) continue;
      const modifiedAt = o.LastModified?.getTime() ?? 0;
      const seen = out.get(seg.id);
      out.set(seg.id, { id: seg.id, size: (seen?.size ?? 0) + (o.Size ?? 0), modifiedAt: Math.max(seen?.modifiedAt ?? 0, modifiedAt) });
    }
    for (const u of await this.abandonedUploads()) out.set(u.id, u);
    return [...out.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async deleteWrite(id: string): Promise<void> {
    const upload = this.parseUploadId(id);
    if (upload) {
      try {
        await this.objects.s3.send(new (s3Sdk().AbortMultipartUploadCommand)({ Bucket: this.objects.bucket, Key: upload.key, UploadId: upload.uploadId }));
      } catch (err) {
        if (!isNotFound(err)) throw storageError(err, `aborting the multipart upload ${upload.uploadId} of ${upload.key}`);
      }
      return;
    }
    this.checkWriteId(id);
    const live = this.ctx.writers.get(id);
    if (live) await live.cancel();
    const keys: string[] = [];
    for await (const o of this.objects.list(this.keys.writePrefix(id))) if (o.Key) keys.push(o.Key);
    await this.objects.deleteAll(keys);
  }

  async delete(digest: string): Promise<boolean> {
    const key = this.keys.contentKey(this.kind, digest);
    if (!(await this.objects.head(key))) return false;
    await this.objects.delete(key);
    return true;
  }

  async list(opts: { after?: string; limit?: number } = {}): Promise<ContentEntry[]> {
    const limit = opts.limit ?? Number.POSITIVE_INFINITY;
    const out: ContentEntry[] = [];
    if (limit <= 0) return out;
    const prefix = this.keys.contentPrefix(this.kind);
    const startAfter = opts.after === undefined ? undefined : this.keys.contentStartAfter(this.kind, opts.after);
    for await (const o of this.objects.list(prefix, { ...(startAfter ? { startAfter } : {}), pageSize: Math.min(1000, limit) })) {
      const digest = o.Key ? this.keys.digestOfKey(this.kind, o.Key) : undefined;
      if (!digest || (opts.after !== undefined && digest <= opts.after)) continue;
      out.push({ digest, size: o.Size ?? 0, storedAt: o.LastModified?.getTime() ?? 0 });
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Multipart uploads on this store's keys that no commit of this process is doing. */
  private async abandonedUploads(): Promise<PendingWrite[]> {
    const out: PendingWrite[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let res;
      try {
        res = await this.objects.s3.send(
          new (s3Sdk().ListMultipartUploadsCommand)({
            Bucket: this.objects.bucket,
            Prefix: this.keys.contentPrefix(this.kind),
            ...(keyMarker ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
        );
      } catch (err) {
        throw storageError(err, `listing the multipart uploads under ${this.keys.contentPrefix(this.kind)}`);
      }
      for (const u of res.Uploads ?? []) {
        const digest = u.Key ? this.keys.digestOfKey(this.kind, u.Key) : undefined;
        if (!digest || !u.UploadId || this.ctx.uploads.has(u.UploadId)) continue;
        const d = parseDigest(digest)!;
        out.push({
          id: `${this.kind}-mpu-${d.algorithm}-${d.hex}-${Buffer.from(u.UploadId).toString('base64url')}`,
          size: await this.uploadedBytes(u.Key!, u.UploadId),
          modifiedAt: u.Initiated?.getTime() ?? 0,
        });
      }
      if (!res.IsTruncated) return out;
      keyMarker = res.NextKeyMarker;
      uploadIdMarker = res.NextUploadIdMarker;
    }
  }

  private async uploadedBytes(key: string, uploadId: string): Promise<number> {
    let bytes = 0;
    let marker: string | undefined;
    for (;;) {
      let res;
      try {
        res = await this.objects.s3.send(new (s3Sdk().ListPartsCommand)({ Bucket: this.objects.bucket, Key: key, UploadId: uploadId, ...(marker ? { PartNumberMarker: marker } : {}) }));
      } catch (err) {
        if (isNotFound(err)) return bytes; // completed or aborted meanwhile
        throw storageError(err, `listing the parts of ${key}`);
      }
      for (const p of res.Parts ?? []) bytes += p.Size ?? 0;
      if (!res.IsTruncated || !res.NextPartNumberMarker) return bytes;
      marker = res.NextPartNumberMarker;
    }
  }

  /** The key and upload id an abandoned-upload write id names, or undefined for another kind of id. */
  private parseUploadId(id: string): { key: string; uploadId: string } | undefined {
    const m = new RegExp(`^${this.kind}-mpu-([a-z0-9]+)-([0-9a-f]+)-([A-Za-z0-9_-]+)$`).exec(id);
    if (!m || !parseDigest(`${m[1]}:${m[2]}`)) return undefined;
    return { key: this.keys.contentKey(this.kind, `${m[1]}:${m[2]}`), uploadId: Buffer.from(m[3]!, 'base64url').toString() };
  }

  private checkWriteId(id: string): void {
    if (!new RegExp(`^${this.kind}-\\d+-[0-9a-f]{16}$`).test(id)) throw fail('BLOB_UPLOAD_UNKNOWN', 'invalid write id');
  }

  private algorithm(digest: string): string {
    const d = parseDigest(digest);
    if (!d) throw fail('DIGEST_INVALID', `invalid digest ${JSON.stringify(digest)}`);
    return d.algorithm;
  }
}
