/**
 * The latest bytes of one download, kept in memory so that clients keeping up with it are served from
 * there instead of reading the content write back. It holds the upstream's own buffers (no copy) and is
 * bounded: once more than `capacity` bytes are held, the oldest are dropped, but only those the content
 * write has already stored (below `durable`), so a reader that falls behind the window always finds its
 * next byte in the store. What it holds beyond `capacity` is what the download has not stored yet, which
 * the download holds anyway (its writes in flight).
 */
export class ByteWindow {
  /** Held chunks in order; those before `head` are dropped (the array is compacted now and then). */
  private chunks: Buffer[] = [];
  /** Offset in the blob of each held chunk's first byte. */
  private offsets: number[] = [];
  private head = 0;
  private first: number;
  private last: number;
  private held = 0;

  /** `start`: offset of the first byte that will be pushed (0, or where a resumed write continues). */
  constructor(
    private capacity: number,
    start = 0,
  ) {
    this.first = start;
    this.last = start;
  }

  /** Offset of the oldest byte held. */
  get start(): number {
    return this.first;
  }

  /** Offset just past the newest byte pushed (it stays there once the window is cleared). */
  get end(): number {
    return this.last;
  }

  /** Capacity from now on (the process's windows share their memory: DownloadBudget); what is over it goes at the next trim. */
  resize(capacity: number): void {
    this.capacity = capacity;
  }

  /** Bytes held in memory. */
  get bytes(): number {
    return this.held;
  }

  /** Adds the next bytes of the download, then drops what `durable` allows. */
  push(chunk: Buffer, durable: number): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.offsets.push(this.last);
    this.last += chunk.length;
    this.held += chunk.length;
    this.trim(durable);
  }

  /** Drops the oldest chunks while more than `capacity` bytes are held, never one that reaches `durable` or beyond. */
  trim(durable: number): void {
    while (this.head < this.chunks.length && this.held > this.capacity) {
      const chunk = this.chunks[this.head]!;
      const chunkEnd = this.offsets[this.head]! + chunk.length;
      if (chunkEnd > durable) break;
      this.drop();
    }
    if (this.head > 64 && this.head * 2 > this.chunks.length) this.compact();
  }

  /**
   * Up to `length` bytes from `position`, as far as the window holds them; undefined when it does not hold
   * `position`. Within one chunk, a view of it; across chunks, one copy (the upstream's chunks are small, and
   * a few large writes to a client's socket cost much less than many small ones).
   */
  read(position: number, length: number): Buffer | undefined {
    if (position < this.first || position >= this.last || length <= 0) return undefined;
    let lo = this.head;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.offsets[mid]! <= position) lo = mid;
      else hi = mid - 1;
    }
    const want = Math.min(length, this.last - position);
    const first = this.chunks[lo]!;
    const at = position - this.offsets[lo]!;
    if (first.length - at >= want) return first.subarray(at, at + want);
    const out = Buffer.allocUnsafe(want);
    let filled = first.copy(out, 0, at);
    for (let i = lo + 1; filled < want; i++) filled += this.chunks[i]!.copy(out, filled, 0, Math.min(this.chunks[i]!.length, want - filled));
    return out;
  }

  /** Drops every byte held (the download ended: readers go on from the store). */
  clear(): void {
    this.chunks = [];
    this.offsets = [];
    this.head = 0;
    this.held = 0;
    this.first = this.last;
  }

  private drop(): void {
    const chunk = this.chunks[this.head]!;
    this.chunks[this.head] = EMPTY;
    this.head++;
    this.held -= chunk.length;
    this.first += chunk.length;
  }

  private compact(): void {
    this.chunks = this.chunks.slice(this.head);
    this.offsets = this.offsets.slice(this.head);
    this.head = 0;
  }
}

const EMPTY = Buffer.alloc(0);
