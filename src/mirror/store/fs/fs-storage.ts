import { randomBytes } from 'node:crypto';
import { access, constants, mkdir, rm, stat, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../../../common/clock.js';
import { MirrorgateError } from '../../../common/errors.js';
import type { Storage, StorageClaim, StorageHolder, StorageOwner } from '../storage.js';
import { FsContentStore } from './fs-content-store.js';
import { FsMetadataStore } from './fs-metadata-store.js';
import { StorageLayout } from './layout.js';
import { isMissing } from './missing.js';
import { acquireStorageLock, currentHolder } from './storage-lock.js';
import { sweepTempFiles } from './sweep.js';

/**
 * The embedded default: everything under one directory (see StorageLayout for what goes where). Shared
 * (`shared: true`), several processes serve from it at once (the mirror's workers): metadata keeps nothing
 * in memory and leases are files, and `prepare` leaves the temp directory alone, since the other processes'
 * writes are in it (the process that forked them swept it before).
 */
export class FsStorage implements Storage {
  readonly layout: StorageLayout;
  readonly blobs: FsContentStore;
  readonly manifests: FsContentStore;
  readonly metadata: FsMetadataStore;
  /**
   * `<accelPrefix><alg>/<hex[0:2]>/<hex>` for a blob whose file is stored (a front server maps the prefix
   * to `<root>/blobs/`); set only with `accelPrefix` (`storage.accelRedirect`), so that streaming storage
   * makes no lookups for it.
   */
  readonly blobAccelPath?: (digest: string) => Promise<string | undefined>;

  private readonly shared: boolean;

  constructor(root: string, clock: Clock, opts: { shared?: boolean; accelPrefix?: string } = {}) {
    this.layout = new StorageLayout(root);
    this.shared = opts.shared ?? false;
    this.blobs = new FsContentStore(this.layout, 'blobs');
    this.manifests = new FsContentStore(this.layout, 'manifests');
    this.metadata = new FsMetadataStore(this.layout, clock, { shared: this.shared });
    const prefix = opts.accelPrefix;
    if (prefix !== undefined) this.blobAccelPath = (digest) => this.accelPath(prefix, digest);
  }

  /** Only a file in its place counts: a blob's file is there only once verified (written to tmp/, then renamed). */
  private async accelPath(prefix: string, digest: string): Promise<string | undefined> {
    try {
      if (!(await stat(this.layout.blobPath(digest))).isFile()) return undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    return prefix + this.layout.contentUriPath(digest);
  }

  get description(): string {
    return this.layout.root;
  }

  async prepare(): Promise<{ swept: number }> {
    const root = this.layout.root;
    try {
      await mkdir(root, { recursive: true });
      await access(root, constants.W_OK | constants.R_OK);
      const probe = path.join(root, `.write-probe-${randomBytes(4).toString('hex')}`);
      await writeFile(probe, 'ok');
      await rm(probe, { force: true });
    } catch (err) {
      throw new MirrorgateError('CONFIG_INVALID', `storage directory ${root} is not usable: ${(err as Error).message}`, { cause: err });
    }
    if (this.shared) return { swept: 0 };
    const uploads = new Set((await this.metadata.listUploads()).map((u) => u.writeId));
    return { swept: await sweepTempFiles(this.layout.tmpDir, uploads) };
  }

  async freeSpace(): Promise<number | undefined> {
    const fs = await statfs(this.layout.root);
    return fs.bavail * fs.bsize;
  }

  claim(owner: StorageOwner, opts: { force?: boolean } = {}): Promise<StorageClaim> {
    return acquireStorageLock(this.layout, owner, opts);
  }

  holder(): Promise<StorageHolder | undefined> {
    return currentHolder(this.layout);
  }
}
