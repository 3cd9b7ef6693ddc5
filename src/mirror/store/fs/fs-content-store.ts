import { open, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fail } from '../../../common/errors.js';
import { parseDigest } from '../../../reference/grammar.js';
import type { ContentEntry, ContentRead, ContentStore, PendingWrite } from '../content-store.js';
import { resolveRange } from '../range.js';
import type { BlobInfo, RangeRequest } from '../types.js';
import { FileBody } from './file-body.js';
import { FsContentWriter, WRITE_SUFFIX } from './fs-content-writer.js';
import { dirNames, isMissing } from './missing.js';
import type { ContentKind, StorageLayout } from './layout.js';

/** 256 KiB reads: as fast as larger ones here, and a quarter of the memory per stream. */
const READ_CHUNK = 256 * 1024;
/** Files stat'ed at once while listing. */
const STAT_BATCH = 64;

/**
 * Content addressed by digest on the local filesystem: `<root>/<kind>/<alg>/<hex[0:2]>/<hex>`, written
 * through a temp file in `<root>/tmp` that is verified, synced and renamed into place.
 */
export class FsContentStore implements ContentStore {
  constructor(
    private readonly layout: StorageLayout,
    private readonly kind: ContentKind,
  ) {}

  async stat(digest: string): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.layout.contentPath(this.kind, digest));
      return { digest, size: s.size };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async open(digest: string, rangeRequest?: RangeRequest): Promise<ContentRead | undefined> {
    // Open first, then size the open file: once open, the bytes stay readable even if eviction unlinks
    // the file before (or while) they are streamed.
    let fh;
    try {
      fh = await open(this.layout.contentPath(this.kind, digest), 'r');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    let info: BlobInfo;
    let range;
    try {
      info = { digest, size: (await fh.stat()).size };
      range = rangeRequest && resolveRange(rangeRequest, info.size);
    } catch (err) {
      await fh.close();
      throw err;
    }
    const body = new FileBody(fh, range?.start ?? 0, range?.end ?? info.size - 1, READ_CHUNK);
    return range ? { info, body, range } : { info, body };
  }

  async writer(digest: string): Promise<FsContentWriter> {
    return FsContentWriter.create(this.layout.tmpDir, this.kind, (d) => this.layout.contentPath(this.kind, d), this.algorithm(digest));
  }

  async resume(id: string, digest: string): Promise<FsContentWriter | undefined> {
    return FsContentWriter.resume(this.writePath(id), (d) => this.layout.contentPath(this.kind, d), this.algorithm(digest));
  }

  async listWrites(): Promise<PendingWrite[]> {
    const names = await dirNames(this.layout.tmpDir);
    const out: PendingWrite[] = [];
    for (const name of names.sort()) {
      if (!name.startsWith(`${this.kind}-`) || !name.endsWith(WRITE_SUFFIX)) continue;
      const s = await stat(path.join(this.layout.tmpDir, name)).catch(() => undefined);
      if (s?.isFile()) out.push({ id: name.slice(0, -WRITE_SUFFIX.length), size: s.size, modifiedAt: s.mtimeMs });
    }
    return out;
  }

  async deleteWrite(id: string): Promise<void> {
    await rm(this.writePath(id), { force: true });
  }

  async delete(digest: string): Promise<boolean> {
    try {
      await unlink(this.layout.contentPath(this.kind, digest));
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  async list(opts: { after?: string; limit?: number } = {}): Promise<ContentEntry[]> {
    const base = this.layout.contentDir(this.kind);
    const limit = opts.limit ?? Number.POSITIVE_INFINITY;
    if (limit <= 0) return [];
    const files: { digest: string; file: string }[] = [];
    // Directory order is <alg>/<2 hex>/<hex>: sorted at each level, that is digest order.
    const afterDir = opts.after === undefined ? undefined : opts.after.slice(0, opts.after.indexOf(':') + 3);
    outer: for (const alg of (await dirNames(base)).sort()) {
      for (const prefix of (await dirNames(path.join(base, alg))).sort()) {
        if (afterDir !== undefined && `${alg}:${prefix}` < afterDir) continue;
        for (const hex of (await dirNames(path.join(base, alg, prefix))).sort()) {
          const digest = `${alg}:${hex}`;
          if (!hex.startsWith(prefix) || !parseDigest(digest) || (opts.after !== undefined && digest <= opts.after)) continue;
          files.push({ digest, file: path.join(base, alg, prefix, hex) });
          if (files.length >= limit) break outer;
        }
      }
    }
    const out: ContentEntry[] = [];
    for (let i = 0; i < files.length; i += STAT_BATCH) {
      const stats = await Promise.all(files.slice(i, i + STAT_BATCH).map(({ file }) => stat(file).catch(() => undefined)));
      stats.forEach((s, j) => {
        if (s) out.push({ digest: files[i + j]!.digest, size: s.size, storedAt: s.mtimeMs });
      });
    }
    return out;
  }

  private writePath(id: string): string {
    if (!new RegExp(`^${this.kind}-\\d+-[0-9a-f]{16}$`).test(id)) throw fail('BLOB_UPLOAD_UNKNOWN', 'invalid write id');
    return path.join(this.layout.tmpDir, `${id}${WRITE_SUFFIX}`);
  }

  private algorithm(digest: string): string {
    const d = parseDigest(digest);
    if (!d) throw fail('DIGEST_INVALID', `invalid digest ${JSON.stringify(digest)}`);
    return d.algorithm;
  }
}
