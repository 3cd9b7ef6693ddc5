import { MirrorgateError } from '../../common/errors.js';
import type { ContentStore } from './content-store.js';
import type { BlobInfo } from './types.js';

/** The whole of a small item (a manifest), or undefined when not held; refuses one over `max` bytes. */
export async function readSmallContent(store: ContentStore, digest: string, max: number): Promise<Buffer | undefined> {
  const content = await store.open(digest);
  if (!content) return undefined;
  if (content.info.size > max) {
    content.body.destroy();
    throw new MirrorgateError('UNKNOWN', `stored ${digest} is larger than ${max} bytes`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of content.body as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Writes a small item from memory; the write is verified against `digest` like any other. */
export async function putSmallContent(store: ContentStore, digest: string, bytes: Buffer): Promise<BlobInfo> {
  const writer = await store.writer(digest);
  try {
    await writer.append([bytes]);
  } catch (err) {
    await writer.cancel();
    throw err;
  }
  return writer.commit({ digest, size: bytes.length });
}
