import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/common/clock.js';
import { silentLogger } from '../../../src/common/logger.js';
import { BlobFetch } from '../../../src/mirror/proxy/blob-fetch.js';
import { FsStorage } from '../../../src/mirror/store/fs/fs-storage.js';
import { makeTempDir, type TempDir } from '../../helpers/tmp.js';

const dirs: TempDir[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await d.cleanup();
});

async function storage(): Promise<FsStorage> {
  const dir = await makeTempDir('mirrorgate-blob-fetch-');
  dirs.push(dir);
  return new FsStorage(dir.path, systemClock);
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
// Larger than the 1 MiB the download gathers before each write, so part of it is written while the rest is awaited.
const bytes = Buffer.from(Array.from({ length: 3_000_000 }, (_, i) => i % 251));
const digest = sha(bytes);

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Resolves when `fetch` has `n` bytes in its write, or rejects after a second. */
async function writtenAtLeast(fetch: BlobFetch, n: number): Promise<void> {
  for (let i = 0; i < 100 && fetch.written < n; i++) await new Promise((r) => setTimeout(r, 10));
  if (fetch.written < n) throw new Error(`only ${fetch.written} bytes written`);
}

describe('BlobFetch', () => {
  it('a follower gets every byte but the last until the blob is verified, then all of it; the blob is committed', async () => {
    const s = await storage();
    const body = new PassThrough();
    const fetch = new BlobFetch(await s.blobs.writer(digest), body, { digest, size: bytes.length }, silentLogger());
    const follower = fetch.follow();
    const received: Buffer[] = [];
    follower.on('data', (c: Buffer) => received.push(c));
    const ended = new Promise((r) => follower.once('end', r));
    body.write(bytes.subarray(0, 1_500_000));
    await writtenAtLeast(fetch, 1_048_576);
    await new Promise((r) => setTimeout(r, 50));
    const early = Buffer.concat(received).length;
    expect(early).toBeLessThan(fetch.written); // the last written byte is held back
    expect(early).toBeGreaterThan(0);
    body.end(bytes.subarray(1_500_000));
    await expect(fetch.done).resolves.toEqual({ digest, size: bytes.length });
    await ended;
    expect(Buffer.concat(received).equals(bytes)).toBe(true);
    expect(await s.blobs.stat(digest)).toEqual({ digest, size: bytes.length });
  });

  it('a range follows the download and ends at its last byte', async () => {
    const s = await storage();
    const body = new PassThrough();
    const fetch = new BlobFetch(await s.blobs.writer(digest), body, { digest, size: bytes.length }, silentLogger());
    const range = fetch.resolve({ start: 1000, end: 1999 });
    const part = readAll(fetch.follow(range));
    body.end(bytes);
    expect((await part).equals(bytes.subarray(1000, 2000))).toBe(true);
  });

  it('wrong bytes: followers fail short, the fetch fails with UPSTREAM_INVALID_CONTENT, nothing is stored or left', async () => {
    const s = await storage();
    const wrong = Buffer.from(bytes);
    wrong[123] = wrong[123]! ^ 1;
    const fetch = new BlobFetch(await s.blobs.writer(digest), Readable.from([wrong]), { digest, size: bytes.length }, silentLogger());
    const follower = readAll(fetch.follow());
    await expect(fetch.done).rejects.toMatchObject({ code: 'UPSTREAM_INVALID_CONTENT' });
    await expect(follower).rejects.toMatchObject({ code: 'UPSTREAM_INVALID_CONTENT' });
    expect(await s.blobs.stat(digest)).toBeUndefined();
    expect(await s.blobs.listWrites()).toEqual([]);
  });

  it('more bytes than announced: refused as they arrive', async () => {
    const s = await storage();
    const fetch = new BlobFetch(await s.blobs.writer(digest), Readable.from([bytes, Buffer.from('extra')]), { digest, size: bytes.length }, silentLogger());
    await expect(fetch.done).rejects.toMatchObject({ code: 'UPSTREAM_INVALID_CONTENT' });
    expect(await s.blobs.stat(digest)).toBeUndefined();
  });

  it('a broken upstream body is resumed from the written offset and the blob still verifies', async () => {
    const s = await storage();
    const first = new PassThrough();
    const offsets: number[] = [];
    const resume = {
      attempts: 2,
      from: async (offset: number) => {
        offsets.push(offset);
        return Readable.from([bytes.subarray(offset)]);
      },
    };
    const fetch = new BlobFetch(await s.blobs.writer(digest), first, { digest, size: bytes.length }, silentLogger(), resume);
    const follower = readAll(fetch.follow());
    first.write(bytes.subarray(0, 1_200_000));
    await writtenAtLeast(fetch, 1_048_576);
    first.destroy(new Error('connection reset'));
    await expect(fetch.done).resolves.toEqual({ digest, size: bytes.length });
    // What did arrive is kept: the resume asks for the rest only.
    expect(offsets).toEqual([1_200_000]);
    expect((await follower).equals(bytes)).toBe(true);
  });

  it('a follower that starts after the commit reads the committed blob', async () => {
    const s = await storage();
    const fetch = new BlobFetch(await s.blobs.writer(digest), Readable.from([bytes]), { digest, size: bytes.length }, silentLogger());
    await fetch.done;
    expect((await readAll(fetch.follow())).equals(bytes)).toBe(true);
  });
});
