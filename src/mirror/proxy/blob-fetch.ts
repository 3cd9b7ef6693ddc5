import { Readable } from 'node:stream';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { ContentWriter } from '../store/content-store.js';
import { resolveRange } from '../store/range.js';
import { ByteWindow } from './byte-window.js';
import type { DownloadBudget } from './download-budget.js';
import { release } from '../upstream/client.js';
import { isStorageFull } from '../store/storage-full.js';
import type { BlobInfo, ByteRange, RangeRequest } from '../store/types.js';

const READ_CHUNK = 256 * 1024;
/** Bytes gathered before a write to the temp file (one `writev`). */
const WRITE_BATCH = 1024 * 1024;
/**
 * Writes to the temp file at once, while few downloads run (measured: 4 x 1 MiB copies a blob about 1.6x faster
 * than one 256 KiB write at a time); DownloadBudget allows fewer when many run.
 */
export const WRITES_IN_FLIGHT = 4;
/**
 * Stored bytes the in-memory window of a download keeps for its followers (on top of those not stored yet,
 * at most the batch and the writes in flight), while few downloads run (DownloadBudget gives each less when
 * many do). Followers within it are served from memory; slower ones read the store.
 */
export const WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * Asks the upstream for the rest of the blob from `offset` (a `Range` request). Resolves with the body of a
 * 206 answer starting exactly there, or undefined when the upstream cannot resume.
 */
export type ResumeFrom = (offset: number) => Promise<Readable | undefined>;

/** An upstream body failed (not our disk, not verification): worth resuming. */
class UpstreamBodyError extends Error {}

/**
 * One download of a blob from an upstream into the cache, shared by every client that asks for the blob
 * while it runs. The upstream body goes to a content write (hashed as it is written) and to a bounded
 * in-memory window of the latest bytes (ByteWindow). Each client follows at its own pace, so a slow client
 * never slows the download or the others: from the window while it keeps up, from the content write (read
 * back as it grows) when it falls behind, and from the window again once it catches up.
 *
 * Nothing unverified is ever served as complete: the last byte of every response is held back until the
 * whole blob has been verified and committed. On a mismatch or a cut, followers fail mid-stream and the
 * client sees a short transfer, not a corrupt one.
 */
export class BlobFetch {
  readonly digest: string;
  /** Expected size, from the upstream's Content-Length; undefined when it sent none. */
  readonly size: number | undefined;
  private state: 'running' | 'done' | 'failed' = 'running';
  /** Size and digest checked; the file may still be syncing before its rename. */
  private verified = false;
  private error: Error | undefined;
  private readonly window: ByteWindow;
  /** Window end when followers were last woken for new bytes. */
  private announced = 0;
  private tick!: Promise<void>;
  private wake!: () => void;
  /** Settles when the blob is committed (resolves) or the fetch failed (rejects). */
  readonly done: Promise<BlobInfo>;

  constructor(
    private readonly writer: ContentWriter,
    body: Readable,
    expected: { digest: string; size: number | undefined },
    private readonly logger: Logger,
    private readonly resume?: { from: ResumeFrom; attempts: number },
    /** The window's bytes, or the budget that shares memory out between the process's downloads. */
    private readonly budget: number | DownloadBudget = WINDOW_BYTES,
  ) {
    this.digest = expected.digest;
    this.size = expected.size;
    this.window = typeof budget === 'number' ? new ByteWindow(budget, writer.written) : budget.open(writer.written);
    this.announced = this.window.end;
    this.rearm();
    writer.on('progress', (written) => {
      this.window.trim(written);
      this.notify();
    });
    writer.once('verified', () => {
      this.verified = true;
      this.notify();
    });
    this.done = this.run(body);
    if (typeof budget !== 'number') {
      const close = (): void => budget.close(this.window);
      void this.done.then(close, close);
    }
    // Followers observe failures through `state`; nobody may be awaiting `done`.
    this.done.catch(() => undefined);
  }

  get written(): number {
    return this.writer.written;
  }

  /** Bytes received from the upstream so far (followers may have all but the last before verification). */
  get received(): number {
    return this.window.end;
  }

  /** Bytes the window holds in memory now. */
  get windowBytes(): number {
    return this.window.bytes;
  }

  get failed(): boolean {
    return this.state === 'failed';
  }

  private rearm(): void {
    this.tick = new Promise<void>((resolve) => {
      this.wake = resolve;
    });
  }

  private notify(): void {
    this.announced = this.window.end;
    const wake = this.wake;
    this.rearm();
    wake();
  }

  /**
   * Copies one upstream body into the temp file; upstream failures are told apart from ours. Reading and
   * writing overlap: chunks that arrive while a write is in flight are gathered and written together.
   */
  private async copy(body: Readable): Promise<void> {
    const it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    let batch: Buffer[] = [];
    let batchBytes = 0;
    /** Writes in flight, oldest first; a few at once keep the disk busy while the upstream keeps sending. */
    const inflight: Promise<void>[] = [];
    const settle = async (keep: number): Promise<void> => {
      while (inflight.length > keep) await inflight.shift();
    };
    const flush = async (): Promise<void> => {
      if (batch.length > 0) {
        const write = this.writer.append(batch);
        // Observed when it is awaited; keep it from being reported as unhandled meanwhile.
        write.catch(() => undefined);
        inflight.push(write);
        batch = [];
        batchBytes = 0;
      }
      await settle((typeof this.budget === 'number' ? WRITES_IN_FLIGHT : this.budget.writes) - 1);
    };
    try {
      for (;;) {
        let next: IteratorResult<Buffer>;
        try {
          next = await it.next();
        } catch (err) {
          // Keep what did arrive: a resume continues from the end of it.
          await flush();
          await settle(0);
          throw new UpstreamBodyError((err as Error).message, { cause: err });
        }
        if (next.done) break;
        if (this.size !== undefined && this.writer.reservedBytes + batchBytes + next.value.length > this.size) {
          throw new MirrorgateError('SIZE_INVALID', `upstream sent more than the ${this.size} bytes it announced`);
        }
        batch.push(next.value);
        batchBytes += next.value.length;
        // Followers may have these bytes now, before they are stored (but never the last one before verification).
        // They are woken once a read's worth has arrived (or by the write's progress): a wake-up per upstream
        // chunk meant a socket write per chunk, which cost a single cold client more than the file read it saved.
        this.window.push(next.value, this.writer.written);
        if (this.window.end - this.announced >= READ_CHUNK) this.notify();
        if (batchBytes >= WRITE_BATCH) await flush();
      }
      await flush(); // the last batch
      await settle(0);
    } finally {
      // Whatever happened, no write may still be running when the caller resumes or cancels.
      await Promise.allSettled(inflight);
    }
  }

  private async run(first: Readable): Promise<BlobInfo> {
    let body = first;
    try {
      for (let resumes = 0; ; resumes++) {
        try {
          await this.copy(body);
          break;
        } catch (err) {
          const canResume = err instanceof UpstreamBodyError && this.resume && resumes < this.resume.attempts && this.size !== undefined;
          if (!canResume) throw err instanceof UpstreamBodyError ? (err.cause as Error) : err;
          release(body);
          this.logger.warn({ digest: this.digest, offset: this.writer.written, err: err.message }, 'upstream transfer broke; resuming with a range request');
          const rest = await this.resume!.from(this.writer.written);
          if (!rest) throw err.cause as Error;
          body = rest;
        }
      }
      const info = await this.writer.commit({ digest: this.digest, size: this.size ?? -1 });
      // Committed: followers still reading read the stored blob; the memory goes back now.
      this.window.clear();
      this.state = 'done';
      this.notify();
      return info;
    } catch (err) {
      release(body);
      const e = isStorageFull(err)
        ? new MirrorgateError('STORAGE_FULL', `cache storage full while downloading ${this.digest}`, { cause: err })
        : err instanceof MirrorgateError && (err.code === 'DIGEST_INVALID' || err.code === 'SIZE_INVALID')
          ? new MirrorgateError('UPSTREAM_INVALID_CONTENT', `upstream blob ${this.digest} failed verification: ${err.message}`, { cause: err })
          : err instanceof MirrorgateError
            ? err
            : new MirrorgateError('UPSTREAM_UNAVAILABLE', `download of ${this.digest} failed: ${(err as Error).message}`, { cause: err });
      // Nothing is left behind by the time anyone hears of the failure.
      await this.writer.cancel();
      this.window.clear();
      this.error = e;
      this.state = 'failed';
      this.notify();
      this.logger.warn({ digest: this.digest, written: this.writer.written, err: e.message }, 'blob download failed; nothing stored');
      throw e;
    }
  }

  /** Resolves the requested range once the size is known (now, or when the download ends). */
  resolve(range: RangeRequest | undefined): ByteRange | undefined {
    if (!range) return undefined;
    if (this.size === undefined) return undefined;
    return resolveRange(range, this.size);
  }

  /**
   * A stream of the blob's bytes (or a range of them) that follows the download as it goes: each piece from
   * the window when it holds it, else from the content write (the window only drops bytes stored there, so
   * the next byte is always in one of them; `pos` alone says where the stream is, so switching between them
   * neither skips nor repeats a byte).
   */
  follow(range?: ByteRange): Readable {
    const start = range?.start ?? 0;
    const limit = range ? range.end + 1 : Number.POSITIVE_INFINITY;
    const self = this;
    async function* read(): AsyncGenerator<Buffer> {
      if (self.failed) throw self.error!;
      const reader = await self.writer.openReader().catch(async (err: unknown) => {
        // The write vanished under us: the download is failing; answer with its error, not the file's.
        await self.done.catch(() => undefined);
        throw self.failed ? self.error! : err;
      });
      try {
        let pos = start;
        for (;;) {
          if (self.failed) throw self.error!;
          const done = self.state === 'done' || self.verified;
          // Until verified, hold back the response's last byte (or, size unknown, the last byte received).
          const received = self.window.end;
          const available = done ? Math.min(received, limit) : Math.min(received - 1, limit - 1);
          if (pos < available) {
            const held = self.window.read(pos, Math.min(READ_CHUNK, available - pos));
            if (held) {
              pos += held.length;
              yield held;
              continue;
            }
            const stored = Math.min(self.written, available);
            if (pos >= stored) throw new MirrorgateError('UNKNOWN', `byte ${pos} of ${self.digest} is neither in memory nor stored`);
            const buf = await reader.read(pos, Math.min(READ_CHUNK, stored - pos));
            if (buf.length === 0) throw new MirrorgateError('UNKNOWN', `cached copy of ${self.digest} ended early`);
            pos += buf.length;
            yield buf;
            continue;
          }
          if (done) {
            if (pos < limit && limit !== Number.POSITIVE_INFINITY) throw new MirrorgateError('RANGE_INVALID', 'range beyond the end of the blob');
            return;
          }
          await self.tick;
        }
      } finally {
        await reader.close();
      }
    }
    return Readable.from(read(), { objectMode: false, highWaterMark: READ_CHUNK });
  }
}
