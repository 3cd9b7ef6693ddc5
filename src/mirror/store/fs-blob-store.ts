import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { AccessRecorder } from '../cache/access-tracker.js';
import { FsBlobWriter } from './fs-blob-writer.js';
import type { StorageLayout } from './layout.js';
import { resolveRange } from './range.js';
import type { BlobContent, BlobInfo, BlobStore, RangeRequest, RepositoryRef } from './types.js';


/** 256 KiB reads: as fast as larger ones here, and a quarter of the memory per stream (each read allocates). */
const READ_HIGH_WATER_MARK = 256 * 1024;
/**
 * Content-addressed blobs on the local filesystem. Blobs are shared across repositories: a digest names
 * the same bytes wherever it is referenced.
 */
export class FsBlobStore implements BlobStore {
  /** `access` (optional) is told of every hit and every committed blob; it must not do I/O inline. */
  constructor(
    private readonly layout: StorageLayout,
    private readonly access?: AccessRecorder,
  ) {}

  async stat(_repo: RepositoryRef | undefined, digest: string): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.layout.blobPath(digest));
      this.access?.blobRead(digest);
      return { digest, size: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async open(_repo: RepositoryRef | undefined, digest: string, rangeRequest?: RangeRequest): Promise<BlobContent | undefined> {
    // Open first, then size the open file: once open, the bytes stay readable even if eviction unlinks
    // the blob before (or while) they are streamed.
    let fh;
    try {
      fh = await open(this.layout.blobPath(digest), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
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
    this.access?.blobRead(digest);
    const body = createReadStream('', { fd: fh, start: range?.start ?? 0, end: range?.end, highWaterMark: READ_HIGH_WATER_MARK });
    return range ? { info, body, range } : { info, body };
  }

  async writer(digest: string): Promise<FsBlobWriter> {
    const algorithm = digest.slice(0, digest.indexOf(':'));
    const writer = await FsBlobWriter.create(this.layout.tmpDir, (d) => this.layout.blobPath(d), algorithm);
    const access = this.access;
    if (access) writer.once('committed', () => access.stored('blob', digest, writer.written));
    return writer;
  }
}
