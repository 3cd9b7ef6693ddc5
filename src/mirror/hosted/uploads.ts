import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Clock } from '../../common/clock.js';
import { MirrorgateError, fail } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { LocalBlobStore } from '../local/local-blob-store.js';
import type { ContentStore, ContentWriter } from '../store/content-store.js';
import { isStorageFull } from '../store/storage-full.js';
import type { MetadataStore, UploadSession } from '../store/metadata-store.js';
import type { BlobInfo, RepositoryRef } from '../store/types.js';

/** Bytes gathered from a request body before one append (while the previous one is being written). */
const APPEND_BATCH = 1 << 20;

/** Names the hash algorithm of a write whose digest is not known yet: pushes are verified at the end. */
const SHA256_WRITE = `sha256:${'0'.repeat(64)}`;

/** A chunk's place in the blob (`Content-Range`, inclusive), or `malformed` when the header could not be read. */
export type ChunkRange = { start: number; end: number } | 'malformed';

/** Where an upload stands: what the client is told after each request. */
export interface UploadState {
  id: string;
  /** Bytes received and stored. */
  offset: number;
}

interface OpenUpload {
  /** The session as this process last read or saved it. */
  session: UploadSession;
  writer: ContentWriter;
  /** Requests on one upload run one at a time. */
  queue: Promise<unknown>;
}

/**
 * Blob uploads into hosted repositories (the spec's push API): a session per upload, stored in the metadata
 * store so that it survives a restart (its bytes are a content write, taken up again by id), chunks appended
 * in order, and a close that verifies size and digest before the blob becomes visible in the repository.
 * Sessions idle for longer than `expiryMs` are cancelled and their data removed.
 */
export class Uploads {
  private readonly open = new Map<string, OpenUpload>();
  /** Uploads being taken up again after a restart, so two requests never open one write twice. */
  private readonly resuming = new Map<string, Promise<OpenUpload | undefined>>();

  constructor(
    private readonly deps: {
      blobs: LocalBlobStore;
      content: Pick<ContentStore, 'resume' | 'deleteWrite'>;
      metadata: Pick<MetadataStore, 'putUpload' | 'getUpload' | 'deleteUpload' | 'listUploads'>;
      clock: Clock;
      logger: Logger;
      expiryMs: number;
    },
  ) {}

  /** Upload ids being written by this process (the cache lifecycle leaves their writes alone). */
  isWriting(writeId: string): boolean {
    for (const u of this.open.values()) if (u.session.writeId === writeId) return true;
    return false;
  }

  async start(repo: RepositoryRef): Promise<UploadState> {
    const writer = await this.deps.blobs.writer(SHA256_WRITE);
    const now = this.deps.clock.now();
    const session: UploadSession = { id: randomBytes(16).toString('hex'), repo, writeId: writer.id, offset: 0, startedAt: now, updatedAt: now };
    try {
      await this.deps.metadata.putUpload(session);
    } catch (err) {
      await writer.cancel();
      throw err;
    }
    this.open.set(session.id, { session, writer, queue: Promise.resolve() });
    return { id: session.id, offset: 0 };
  }

  /** Where the upload stands (the spec's upload status). */
  status(repo: RepositoryRef, id: string): Promise<UploadState> {
    return this.serially(repo, id, async (u) => ({ id, offset: u.writer.written }));
  }

  /**
   * Appends a chunk. With `range` (the client's Content-Range), it must start where the upload stands;
   * RANGE_INVALID otherwise (a malformed range too), with the current range so the client can go on from there.
   */
  append(repo: RepositoryRef, id: string, body: Readable, range?: ChunkRange): Promise<UploadState> {
    return this.serially(repo, id, async (u) => {
      checkRange(u, body, range);
      const before = u.writer.written;
      await this.write(u, body);
      if (range && range !== 'malformed' && u.writer.written - before !== range.end - range.start + 1) {
        throw new MirrorgateError('SIZE_INVALID', `Content-Range announced ${range.end - range.start + 1} bytes, the body had ${u.writer.written - before}`);
      }
      return { id, offset: u.writer.written };
    });
  }

  /**
   * A whole blob in one request (`POST ?digest=`): an upload that nobody can resume, since the client never
   * learns its location, so it is gone whatever the outcome.
   */
  async single(repo: RepositoryRef, digest: string, body: Readable): Promise<BlobInfo> {
    const { id } = await this.start(repo);
    try {
      return await this.finish(repo, id, digest, body);
    } catch (err) {
      await this.cancel(repo, id).catch(() => undefined); // already gone when the close itself refused the blob
      throw err;
    }
  }

  /**
   * Appends the last chunk (if any; in place, as for `append`, when its range is given), then verifies the
   * whole blob against `digest` and has the repository hold it.
   */
  finish(repo: RepositoryRef, id: string, digest: string, body?: Readable, range?: ChunkRange): Promise<BlobInfo> {
    return this.serially(repo, id, async (u) => {
      if (body) {
        checkRange(u, body, range);
        await this.write(u, body);
      }
      this.open.delete(id);
      try {
        // Verified (and the write dropped when it does not match) before anything is visible.
        const info = await u.writer.commit({ digest, size: -1 });
        await this.deps.blobs.hold(repo, digest);
        return info;
      } finally {
        await this.deps.metadata.deleteUpload(id);
      }
    });
  }

  cancel(repo: RepositoryRef, id: string): Promise<void> {
    return this.serially(repo, id, async (u) => {
      this.open.delete(id);
      await u.writer.cancel();
      await this.deps.metadata.deleteUpload(id);
    });
  }

  /** Cancels sessions no request touched for `expiryMs`, here or in an earlier run; returns how many. */
  async expire(): Promise<number> {
    const cutoff = this.deps.clock.now() - this.deps.expiryMs;
    let expired = 0;
    for (const session of await this.deps.metadata.listUploads()) {
      const current = this.open.get(session.id)?.session ?? session;
      if (current.updatedAt > cutoff) continue;
      const u = this.open.get(session.id);
      this.open.delete(session.id);
      if (u) await u.writer.cancel();
      else await this.deps.content.deleteWrite(session.writeId).catch(() => undefined);
      await this.deps.metadata.deleteUpload(session.id);
      this.deps.logger.info({ upload: session.id, repository: session.repo.path, offset: session.offset }, 'upload expired; its data was removed');
      expired++;
    }
    return expired;
  }

  private async write(u: OpenUpload, body: Readable): Promise<void> {
    try {
      await appendBody(u.writer, body);
    } catch (err) {
      if (!(err instanceof StoreWriteFailed)) {
        await this.saveOffset(u);
        throw err;
      }
      // The store refused bytes the write had already hashed: it cannot go on. Dropped, so a full disk
      // gets its space back, and the client is told why (a resume would only end in DIGEST_INVALID).
      this.open.delete(u.session.id);
      await u.writer.cancel();
      await this.deps.metadata.deleteUpload(u.session.id);
      this.deps.logger.warn({ upload: u.session.id, repository: u.session.repo.path, err: err.cause }, 'upload cancelled: the store could not write it');
      if (isStorageFull(err.cause)) throw new MirrorgateError('STORAGE_FULL', 'storage is full: the upload was cancelled and its data removed', { cause: err.cause });
      throw err.cause;
    }
    await this.saveOffset(u);
  }

  /**
   * Whatever arrived before a client went away stays, and the session says so: the client can resume, here
   * or through another replica (the bytes are flushed to the store first).
   */
  private async saveOffset(u: OpenUpload): Promise<void> {
    await u.writer.flush();
    u.session = { ...u.session, offset: u.writer.written, updatedAt: this.deps.clock.now() };
    await this.deps.metadata.putUpload(u.session);
  }

  /** An upload started before a restart (or by another replica): its write taken up again. */
  private resume(id: string): Promise<OpenUpload | undefined> {
    let p = this.resuming.get(id);
    if (!p) {
      p = (async () => {
        const session = await this.deps.metadata.getUpload(id);
        const writer = session && (await this.deps.content.resume(session.writeId, SHA256_WRITE));
        if (!session || !writer) return undefined;
        const u: OpenUpload = { session, writer, queue: Promise.resolve() };
        this.open.set(id, u);
        return u;
      })().finally(() => this.resuming.delete(id));
      this.resuming.set(id, p);
    }
    return p;
  }

  /**
   * Takes up what another process (a worker or replica that got a request of this upload) did since this
   * one last saw the session: its writer here would write at a stale offset with a stale hash. Gone there
   * (finished or cancelled), it is gone here too.
   */
  private async catchUp(u: OpenUpload): Promise<void> {
    const stored = await this.deps.metadata.getUpload(u.session.id);
    if (stored && stored.offset === u.session.offset && stored.updatedAt === u.session.updatedAt) return;
    await u.writer.detach?.();
    const writer = stored && (await this.deps.content.resume(stored.writeId, SHA256_WRITE));
    if (!stored || !writer) {
      this.open.delete(u.session.id);
      throw fail('BLOB_UPLOAD_UNKNOWN', `upload ${u.session.id} is closed`);
    }
    u.session = stored;
    u.writer = writer;
  }

  /** Runs `fn` on the upload after the requests before it; BLOB_UPLOAD_UNKNOWN when there is none for this repository. */
  private async serially<T>(repo: RepositoryRef, id: string, fn: (u: OpenUpload) => Promise<T>): Promise<T> {
    const u = await this.get(repo, id);
    const run = u.queue.then(async () => {
      if (this.open.get(id) !== u) throw fail('BLOB_UPLOAD_UNKNOWN', `upload ${id} is closed`);
      await this.catchUp(u);
      return fn(u);
    });
    u.queue = run.catch(() => undefined);
    return run;
  }

  private async get(repo: RepositoryRef, id: string): Promise<OpenUpload> {
    if (!/^[0-9a-f]{32}$/.test(id)) throw fail('BLOB_UPLOAD_UNKNOWN', 'invalid upload id');
    const u = this.open.get(id) ?? (await this.resume(id));
    if (!u) throw fail('BLOB_UPLOAD_UNKNOWN', `upload ${id} unknown`);
    if (u.session.repo.upstream !== repo.upstream || u.session.repo.path !== repo.path) throw fail('BLOB_UPLOAD_UNKNOWN', `upload ${id} unknown in this repository`);
    return u;
  }
}

/** RANGE_INVALID unless a chunk's range (when given) starts where the upload stands; its body is then drained. */
function checkRange(u: OpenUpload, body: Readable, range: ChunkRange | undefined): void {
  if (range === undefined || (range !== 'malformed' && range.start === u.writer.written)) return;
  body.resume();
  const message = range === 'malformed' ? 'invalid Content-Range' : `chunk starts at ${range.start}; the upload is at ${u.writer.written}`;
  throw new MirrorgateError('RANGE_INVALID', message, { headers: uploadHeaders(u.session.repo, u.session.id, u.writer.written) });
}

/** The content store failed an append (the request body was fine): the write is unusable from here on. */
class StoreWriteFailed extends Error {
  constructor(cause: unknown) {
    super('the content store failed a write', { cause });
  }
}

/**
 * Appends a request body, one write in flight while the next batch arrives; reading waits for the disk, so
 * memory stays flat whatever the size. When the client goes away, what was written stays written (a batch
 * still being gathered is dropped: the session's offset says where to resume). A store failure is thrown
 * as StoreWriteFailed, a body failure as it came.
 */
async function appendBody(writer: ContentWriter, body: Readable): Promise<void> {
  const append = (chunks: Buffer[]): Promise<void> =>
    writer.append(chunks).catch((err: unknown) => {
      throw new StoreWriteFailed(err);
    });
  let batch: Buffer[] = [];
  let bytes = 0;
  let inflight: Promise<void> = Promise.resolve();
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      batch.push(chunk);
      bytes += chunk.length;
      if (bytes >= APPEND_BATCH) {
        await inflight;
        inflight = append(batch);
        inflight.catch(() => undefined); // observed below
        batch = [];
        bytes = 0;
      }
    }
  } finally {
    await inflight;
  }
  if (batch.length > 0) await append(batch);
}

/** The headers every upload answer carries: where to send the next request, and how far it got. */
export function uploadHeaders(repo: RepositoryRef, id: string, offset: number): Record<string, string> {
  return {
    location: `/v2/${repo.path}/blobs/uploads/${id}`,
    range: `0-${Math.max(0, offset - 1)}`,
    'docker-upload-uuid': id,
  };
}
