import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/common/clock.js';
import { silentLogger } from '../../../src/common/logger.js';
import { BlobFetch, WINDOW_BYTES } from '../../../src/mirror/proxy/blob-fetch.js';
import type { ContentWriter } from '../../../src/mirror/store/content-store.js';
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

/** A real content writer that counts the bytes its readers read back (what the window did not serve). */
function countingReads(writer: ContentWriter): { writer: ContentWriter; readBack: () => number } {
  let n = 0;
  const counted = Object.create(writer) as ContentWriter;
  counted.openReader = async () => {
    const r = await writer.openReader();
    return {
      read: async (position, length) => {
        const buf = await r.read(position, length);
        n += buf.length;
        return buf;
      },
      close: () => r.close(),
    };
  };
  return { writer: counted, readBack: () => n };
}

/** Feeds `data` in chunks of `size`, waiting for each to be taken (so the download sees many small chunks). */
async function feed(body: PassThrough, data: Buffer, size: number): Promise<void> {
  for (let at = 0; at < data.length; at += size) {
    if (!body.write(data.subarray(at, at + size))) await new Promise((r) => body.once('drain', r));
  }
}

/** Resolves when `fetch` has stored `n` bytes. */
async function storedAtLeast(fetch: BlobFetch, n: number): Promise<void> {
  for (let i = 0; i < 500 && fetch.written < n; i++) await new Promise((r) => setTimeout(r, 5));
  if (fetch.written < n) throw new Error(`only ${fetch.written} bytes stored`);
}

describe('BlobFetch window', () => {
  const WINDOW = 128 * 1024;
  const CHUNK = 16 * 1024;
  /**
   * Fed beyond a batch boundary before waiting for it to be stored: the body may hand the fetch its buffered
   * chunks joined (Node 24's streams do), so a batch can end past the boundary and the next one needs more.
   */
  const MARGIN = 256 * 1024;

  it('a follower that keeps up is served from memory, reading nothing back', async () => {
    const s = await storage();
    const { writer, readBack } = countingReads(await s.blobs.writer(digest));
    const body = new PassThrough();
    // The default window holds the whole blob: whatever the scheduling, the follower never falls behind it.
    const fetch = new BlobFetch(writer, body, { digest, size: bytes.length }, silentLogger(), undefined, WINDOW_BYTES);
    const follower = readAll(fetch.follow());
    await feed(body, bytes, CHUNK);
    body.end();
    await fetch.done;
    expect((await follower).equals(bytes)).toBe(true);
    expect(readBack()).toBe(0);
    expect(fetch.windowBytes).toBe(0); // given back once committed
  });

  it('a follower that falls behind reads on from the store and back into the window, without a gap or a repeated byte', async () => {
    const s = await storage();
    const { writer, readBack } = countingReads(await s.blobs.writer(digest));
    const body = new PassThrough();
    const fetch = new BlobFetch(writer, body, { digest, size: bytes.length }, silentLogger(), undefined, WINDOW);
    const slow = fetch.follow();
    const fast = readAll(fetch.follow());
    slow.pause();
    const firstPart = 2 * 1024 * 1024; // two whole batches: stored without waiting for more
    await feed(body, bytes.subarray(0, firstPart + MARGIN), CHUNK);
    await storedAtLeast(fetch, firstPart);
    // The window has moved on past the slow follower: what it needs next is only in the store. It holds the
    // stored window and what is not stored yet (the batch being filled), nothing more.
    const stored = fetch.written;
    expect(fetch.windowBytes).toBeLessThanOrEqual(WINDOW + firstPart + MARGIN - stored);
    const got: Buffer[] = [];
    slow.on('data', (c: Buffer) => got.push(c));
    const slowEnded = new Promise((r) => slow.once('end', r));
    slow.resume();
    // It catches up: once it has everything received so far (but the held-back byte), the rest comes from memory.
    for (let i = 0; i < 500 && Buffer.concat(got).length < firstPart + MARGIN - 1; i++) await new Promise((r) => setTimeout(r, 5));
    const readBackWhileBehind = readBack();
    expect(readBackWhileBehind).toBeGreaterThan(firstPart - 2 * WINDOW - 256 * 1024);
    await feed(body, bytes.subarray(firstPart + MARGIN), CHUNK);
    body.end();
    await fetch.done;
    await slowEnded;
    expect(Buffer.concat(got).equals(bytes)).toBe(true);
    expect((await fast).equals(bytes)).toBe(true);
    // Caught up: most of what was sent after that came from memory, not the store.
    expect(readBack()).toBeLessThan(readBackWhileBehind + (bytes.length - firstPart) / 2);
  });

  it('followers that never read do not grow the memory held beyond the window and what is not stored yet', async () => {
    const s = await storage();
    const big = Buffer.from(Array.from({ length: 8 * 1024 * 1024 }, (_, i) => (i * 7) % 253));
    const bigDigest = sha(big);
    const body = new PassThrough();
    const fetch = new BlobFetch(await s.blobs.writer(bigDigest), body, { digest: bigDigest, size: big.length }, silentLogger(), undefined, WINDOW);
    const idle = Array.from({ length: 5 }, () => fetch.follow());
    for (const r of idle) r.pause();
    let worst = 0;
    const sample = setInterval(() => {
      worst = Math.max(worst, fetch.windowBytes - (fetch.received - fetch.written));
    }, 1);
    try {
      await feed(body, big, CHUNK);
      body.end();
      // The download ends although nobody read: slow clients do not slow it.
      await fetch.done;
    } finally {
      clearInterval(sample);
    }
    expect(worst).toBeLessThanOrEqual(WINDOW + CHUNK);
    const all = await Promise.all(idle.map((r) => readAll(r)));
    for (const b of all) expect(b.equals(big)).toBe(true);
  });

  it('wrong bytes cut every follower, those in the window and those reading the store, before the last byte', async () => {
    const s = await storage();
    const wrong = Buffer.from(bytes);
    wrong[2_900_000] = wrong[2_900_000]! ^ 1;
    const body = new PassThrough();
    const fetch = new BlobFetch(await s.blobs.writer(digest), body, { digest, size: bytes.length }, silentLogger(), undefined, WINDOW);
    const got = [0, 0];
    const followers = [fetch.follow(), fetch.follow()];
    followers[1]!.pause();
    const outcomes = followers.map(
      (r, i) =>
        new Promise<unknown>((resolve) => {
          r.on('data', (c: Buffer) => (got[i]! += c.length));
          r.once('error', resolve);
          r.once('end', () => resolve(undefined));
        }),
    );
    const firstPart = 2 * 1024 * 1024;
    await feed(body, wrong.subarray(0, firstPart + MARGIN), CHUNK);
    await storedAtLeast(fetch, firstPart);
    followers[1]!.resume(); // behind the window: reads the store
    await feed(body, wrong.subarray(firstPart + MARGIN), CHUNK);
    body.end();
    await expect(fetch.done).rejects.toMatchObject({ code: 'UPSTREAM_INVALID_CONTENT' });
    for (const o of await Promise.all(outcomes)) expect(o).toMatchObject({ code: 'UPSTREAM_INVALID_CONTENT' });
    for (const n of got) expect(n).toBeLessThan(bytes.length);
    expect(fetch.windowBytes).toBe(0);
    expect(await s.blobs.stat(digest)).toBeUndefined();
    expect(await s.blobs.listWrites()).toEqual([]);
  });

  it('an upstream cut with no resume fails every follower; nothing is stored', async () => {
    const s = await storage();
    const body = new PassThrough();
    const fetch = new BlobFetch(await s.blobs.writer(digest), body, { digest, size: bytes.length }, silentLogger(), undefined, WINDOW);
    const followers = [readAll(fetch.follow()), readAll(fetch.follow())];
    await feed(body, bytes.subarray(0, 1_000_000), CHUNK);
    body.destroy(new Error('connection reset'));
    await expect(fetch.done).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    for (const f of followers) await expect(f).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(await s.blobs.stat(digest)).toBeUndefined();
    expect(await s.blobs.listWrites()).toEqual([]);
  });
});
