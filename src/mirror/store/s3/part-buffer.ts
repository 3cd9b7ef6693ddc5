import { createHash, type Hash } from 'node:crypto';

/** First allocation: most items (manifests, configs) are small; the buffer doubles up to its capacity. */
const INITIAL_BYTES = 64 * 1024;

/**
 * The bytes of a write not yet in the object store: at most `capacity` (one part), copied in as they
 * arrive so the callers' chunks are free at once, with their MD5 kept as they come (for the PUT's
 * Content-MD5, without hashing a whole part in one go).
 */
export class PartBuffer {
  private buf: Buffer = Buffer.alloc(0);
  private used = 0;
  private md5: Hash = createHash('md5');

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.used;
  }

  get full(): boolean {
    return this.used >= this.capacity;
  }

  /** Copies in as much of `chunk` (from `from`) as fits; returns how many bytes it took. */
  take(chunk: Buffer, from = 0): number {
    const n = Math.min(chunk.length - from, this.capacity - this.used);
    if (n <= 0) return 0;
    this.reserve(this.used + n);
    chunk.copy(this.buf, this.used, from, from + n);
    this.md5.update(chunk.subarray(from, from + n));
    this.used += n;
    return n;
  }

  /** A copy of `length` bytes from `position` (clamped to what it holds). */
  read(position: number, length: number): Buffer {
    const end = Math.min(this.used, position + length);
    return end <= position ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(position, end));
  }

  /** The bytes held (a view: valid until the next `clear`). */
  view(): Buffer {
    return this.buf.subarray(0, this.used);
  }

  /** Base64 MD5 of the bytes held, as Content-MD5 wants it. Ends the running hash: `clear` before reuse. */
  contentMd5(): string {
    return this.md5.digest('base64');
  }

  /** Empties it for the next part, keeping the allocation. */
  clear(): void {
    this.used = 0;
    this.md5 = createHash('md5');
  }

  /** Empties it and gives the memory back. */
  release(): void {
    this.clear();
    this.buf = Buffer.alloc(0);
  }

  private reserve(size: number): void {
    if (size <= this.buf.length) return;
    let next = Math.max(INITIAL_BYTES, this.buf.length);
    while (next < size) next *= 2;
    const grown = Buffer.allocUnsafe(Math.min(next, this.capacity));
    this.buf.copy(grown, 0, 0, this.used);
    this.buf = grown;
  }
}
