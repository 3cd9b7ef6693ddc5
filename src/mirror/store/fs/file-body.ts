import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { RecyclingBody } from '../../../common/recycling-body.js';

/** Buffers a body keeps for reuse: one being read, one queued in the stream, one in the socket, one spare. */
const KEPT_BUFFERS = 4;

/**
 * The bytes `[start, end]` of an open file as a stream of `chunkSize` reads into reusable buffers
 * (`RecyclingBody`). The file handle is closed when the stream ends or is destroyed.
 */
export class FileBody extends Readable implements RecyclingBody {
  private position: number;
  private readonly free: Buffer[] = [];
  /** Chunks handed out, by the chunk, with the whole buffer each was read into (weak: most are never handed back). */
  private readonly lent = new WeakMap<Buffer, Buffer>();

  constructor(
    private readonly fh: FileHandle,
    start: number,
    /** Inclusive, like `createReadStream`'s. */
    private readonly end: number,
    private readonly chunkSize: number,
  ) {
    super({ highWaterMark: chunkSize });
    this.position = start;
  }

  override _read(): void {
    const length = Math.min(this.chunkSize, this.end + 1 - this.position);
    if (length <= 0) {
      this.push(null);
      return;
    }
    const buffer = this.free.pop() ?? Buffer.allocUnsafeSlow(this.chunkSize);
    this.fh.read(buffer, 0, length, this.position).then(
      ({ bytesRead }) => {
        if (this.destroyed) return;
        if (bytesRead === 0) {
          this.destroy(new Error(`file ended at byte ${this.position}, before byte ${this.end}`));
          return;
        }
        this.position += bytesRead;
        const chunk = bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
        this.lent.set(chunk, buffer);
        this.push(chunk);
      },
      (err: Error) => this.destroy(err),
    );
  }

  recycle(chunk: Buffer): void {
    const buffer = this.lent.get(chunk);
    if (buffer === undefined) return;
    this.lent.delete(chunk);
    if (!this.destroyed && this.free.length < KEPT_BUFFERS) this.free.push(buffer);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.free.length = 0;
    this.fh.close().then(
      () => callback(err),
      (closeErr: Error) => callback(err ?? closeErr),
    );
  }
}
