import type { Readable } from 'node:stream';
import { MirrorgateError } from '../../common/errors.js';
import { release } from '../upstream/messages.js';

/** Reads a small body (a manifest, a JSON document) into memory, refusing anything over `max` bytes. */
export async function readCapped(body: Readable, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) {
        release(body);
        throw new MirrorgateError('UPSTREAM_INVALID_CONTENT', `${what} is larger than ${max} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof MirrorgateError) throw err;
    throw new MirrorgateError('UPSTREAM_UNAVAILABLE', `${what}: transfer failed: ${(err as Error).message}`, { cause: err });
  }
  return Buffer.concat(chunks);
}
