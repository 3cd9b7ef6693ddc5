import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { FsBlobWriter } from './fs-blob-writer.js';
import type { StorageLayout } from './layout.js';
import { resolveRange } from './range.js';
import type { BlobContent, BlobInfo, BlobStore, RangeRequest, RepositoryRef } from './types.js';

/**
 * Content-addressed blobs on the local filesystem. Blobs are shared across repositories: a digest names
 * the same bytes wherever it is referenced.
 */
export class FsBlobStore implements BlobStore {
  constructor(private readonly layout: StorageLayout) {}

  async stat(_repo: RepositoryRef | undefined, digest: string): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.layout.blobPath(digest));
      return { digest, size: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async open(repo: RepositoryRef | undefined, digest: string, rangeRequest?: RangeRequest): Promise<BlobContent | undefined> {
    const info = await this.stat(repo, digest);
    if (!info) return undefined;
    const range = rangeRequest && resolveRange(rangeRequest, info.size);
    const body = createReadStream(this.layout.blobPath(digest), {
      start: range?.start ?? 0,
      end: range?.end,
      highWaterMark: 1 << 20,
    });
    return range ? { info, body, range } : { info, body };
  }

  writer(digest: string): Promise<FsBlobWriter> {
    const algorithm = digest.slice(0, digest.indexOf(':'));
    return FsBlobWriter.create(this.layout.tmpDir, (d) => this.layout.blobPath(d), algorithm);
  }
}
