import type { Readable } from 'node:stream';

/**
 * A body that reads into the same few buffers again: a consumer that knows when a chunk has been written
 * (a socket write's callback) hands it back with `recycle`, and the body reads its next bytes into it. Nothing
 * else may hold the chunk then. Consumers that never hand chunks back get fresh buffers, as from any stream.
 * Why: a warm blob served at a gigabyte a second otherwise allocates a buffer per read, and V8 frees them only
 * at its next collection, so tens of megabytes of spent buffers sit in every process under load.
 */
export interface RecyclingBody {
  recycle(chunk: Buffer): void;
}

export function recyclerOf(body: Readable): ((chunk: Buffer) => void) | undefined {
  const recycle = (body as Readable & Partial<RecyclingBody>).recycle;
  return typeof recycle === 'function' ? recycle.bind(body) : undefined;
}
