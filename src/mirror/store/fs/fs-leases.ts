import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Clock } from '../../../common/clock.js';
import type { Lease } from '../metadata-store.js';
import { isMissing } from './missing.js';
import { processAlive } from './process-alive.js';

interface LeaseFile {
  holder: string;
  token: string;
  /** Epoch ms (the store's clock) after which anyone may take the lease over. */
  expiresAt: number;
  /** The holding process, so that a lease of a process that died (kill -9) is taken over at once. */
  pid: number;
  host: string;
}

/** A takeover marker older than this was left by a process that died while taking a lease over. */
const MARKER_STALE_MS = 10_000;

/**
 * Leases as files in one directory, shared by every process on the storage (the mirror's workers): a lease
 * is created whole with `link` (which fails when the name exists, like O_EXCL, but never shows a half-written
 * file), renewed by an atomic rename of new content over it, released by its holder's unlink. An expired
 * lease is taken over by one process only: the taker first creates a marker named after the expired
 * lease's token (again with `link`), so two takers of the same expired lease cannot both win. A holder only
 * touches its lease while it is unexpired and a taker only one that has expired, so the two meet only when a
 * renewal is late by the whole ttl, which the renew-at-a-third schedule of every holder rules out. A lease
 * whose holder was a process of this host that is no longer running counts as expired (a killed worker's
 * download is taken up by a waiting one at once, not after the ttl).
 */
export class FsLeases {
  constructor(
    private readonly dir: string,
    private readonly clock: Clock,
  ) {}

  async acquire(name: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    const file = this.pathOf(name);
    const doc: LeaseFile = { holder, token: randomBytes(8).toString('hex'), expiresAt: this.clock.now() + ttlMs, pid: process.pid, host: hostname() };
    if (await this.create(file, doc)) return this.lease(name, file, doc);
    const current = await readLease(file);
    // Gone since the create failed (released): one more try, which may lose to another process.
    if (!current) return (await this.create(file, doc)) ? this.lease(name, file, doc) : undefined;
    if (!this.expired(current)) return undefined;
    return (await this.takeOver(file, current, doc)) ? this.lease(name, file, doc) : undefined;
  }

  private lease(name: string, file: string, doc: LeaseFile): Lease {
    let mine = doc;
    return {
      name,
      holder: doc.holder,
      renew: async (ttl: number) => {
        const current = await readLease(file);
        if (current?.token !== mine.token || current.expiresAt <= this.clock.now()) return false;
        const next = { ...mine, expiresAt: this.clock.now() + ttl };
        await this.replace(file, next);
        mine = next;
        return true;
      },
      release: async () => {
        const current = await readLease(file);
        // An expired lease is left for a taker to replace: unlinking it could remove the taker's new one.
        if (current?.token === mine.token && current.expiresAt > this.clock.now()) await unlink(file).catch(() => undefined);
      },
    };
  }

  /** Takes an expired lease over, unless another process is doing the same or it changed since it was read. */
  private async takeOver(file: string, expired: LeaseFile, doc: LeaseFile): Promise<boolean> {
    const marker = `${file}.taking-${expired.token}`;
    if (!(await this.create(marker, doc))) {
      const age = await stat(marker).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age < MARKER_STALE_MS) return false;
      await unlink(marker).catch(() => undefined);
      if (!(await this.create(marker, doc))) return false;
    }
    try {
      const current = await readLease(file);
      if (current && (current.token !== expired.token || !this.expired(current))) return false;
      if (!current) return this.create(file, doc);
      await this.replace(file, doc);
      return true;
    } finally {
      await unlink(marker).catch(() => undefined);
    }
  }

  /** Past its expiry, or held by a process of this host that is gone. */
  private expired(lease: LeaseFile): boolean {
    if (lease.expiresAt <= this.clock.now()) return true;
    return lease.host === hostname() && lease.pid !== process.pid && !processAlive(lease.pid);
  }

  /** Creates `file` with the lease's content, whole; false when it exists. */
  private async create(file: string, doc: LeaseFile): Promise<boolean> {
    const temp = await this.writeTemp(doc);
    try {
      await link(temp, file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      await rm(temp, { force: true });
    }
  }

  /** Puts new content in place of the lease file in one step. */
  private async replace(file: string, doc: LeaseFile): Promise<void> {
    const temp = await this.writeTemp(doc);
    try {
      await rename(temp, file);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  /** The lease's content in a temp file beside the leases (same filesystem, so link and rename work). */
  private async writeTemp(doc: LeaseFile): Promise<string> {
    const temp = path.join(this.dir, `.${randomBytes(8).toString('hex')}.tmp`);
    let fh;
    try {
      fh = await open(temp, 'wx');
    } catch (err) {
      if (!isMissing(err)) throw err;
      await mkdir(this.dir, { recursive: true });
      fh = await open(temp, 'wx');
    }
    try {
      await fh.writeFile(JSON.stringify(doc));
    } finally {
      await fh.close();
    }
    return temp;
  }

  /** One file per lease name; names come from code (`fetch:<digest>`, `lifecycle`), encoded to stay one path segment. */
  private pathOf(name: string): string {
    return path.join(this.dir, `${encodeURIComponent(name).replace(/\./g, '%2E')}.json`);
  }
}

async function readLease(file: string): Promise<LeaseFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
  try {
    const doc = JSON.parse(text) as Partial<LeaseFile>;
    if (typeof doc.token === 'string' && typeof doc.expiresAt === 'number' && typeof doc.holder === 'string' && typeof doc.pid === 'number' && typeof doc.host === 'string') return doc as LeaseFile;
  } catch {
    // Unreadable: treated as expired, so it is replaced rather than blocking the name for ever.
  }
  return { holder: '', token: 'unreadable', expiresAt: 0, pid: 0, host: '' };
}
