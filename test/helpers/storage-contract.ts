import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MirrorgateError, type ErrorCode } from '../../src/common/errors.js';
import type { ContentRead, ContentStore } from '../../src/mirror/store/content-store.js';
import type { Descriptor } from '../../src/mirror/store/manifest-media.js';
import type { MetadataStore, UploadSession } from '../../src/mirror/store/metadata-store.js';
import type { RepositoryRef, TagRecord } from '../../src/mirror/store/types.js';

/**
 * The shared suites every storage implementation runs (filesystem now; object storage and Redis later), as
 * distribution's storage driver suites do: the interfaces' doc comments are the spec, these tests pin it.
 */

export interface ContentStoreHarness {
  store: ContentStore;
  /** Removes everything the store created. */
  cleanup(): Promise<void>;
}

export interface MetadataStoreHarness {
  store: MetadataStore;
  cleanup(): Promise<void>;
  /** Moves the store's notion of time forward (a manual clock here; a real wait for a server-side clock). */
  elapse(ms: number): Promise<void>;
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function sha512(bytes: Buffer): string {
  return `sha512:${createHash('sha512').update(bytes).digest('hex')}`;
}

/** Calls an async interface method; a synchronous throw (instead of a rejected promise) is a failure of its own. */
export function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(new Error(`threw synchronously instead of returning a rejected promise: ${String(err)}`));
  }
}

/** Asserts the promise rejects with a MirrorgateError of `code`. */
export async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<MirrorgateError> {
  const err = await p.then(
    (v) => {
      throw new Error(`expected ${code}, resolved with ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
  expect(err, String(err)).toBeInstanceOf(MirrorgateError);
  expect((err as MirrorgateError).code, String(err)).toBe(code);
  return err as MirrorgateError;
}

export async function readAll(read: ContentRead | undefined): Promise<Buffer> {
  expect(read).toBeDefined();
  const chunks: Buffer[] = [];
  for await (const c of read!.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Stores `bytes` through a writer and returns its digest. */
export async function putContent(store: ContentStore, bytes: Buffer, digest = sha256(bytes)): Promise<string> {
  const w = await store.writer(digest);
  await w.append([bytes]);
  await w.commit({ digest, size: bytes.length });
  return digest;
}

const MiB = 1024 * 1024;

/** Samples the resident set size while `run` goes; returns the largest growth over the start. */
async function peakRssGrowth(run: (sample: () => void) => Promise<void>): Promise<number> {
  const base = process.memoryUsage().rss;
  let peak = base;
  const sample = (): void => {
    peak = Math.max(peak, process.memoryUsage().rss);
  };
  await run(sample);
  sample();
  return peak - base;
}

export function describeContentStoreContract(name: string, makeStore: () => Promise<ContentStoreHarness>): void {
  describe(`ContentStore contract: ${name}`, () => {
    let store: ContentStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
    });
    afterEach(async () => {
      await cleanup();
    });

    it('answers undefined / false for a digest it does not hold', async () => {
      const d = sha256(Buffer.from('never stored'));
      expect(await store.stat(d)).toBeUndefined();
      expect(await store.open(d)).toBeUndefined();
      expect(await store.open(d, { start: 0 })).toBeUndefined();
      expect(await store.delete(d)).toBe(false);
      expect(await store.list()).toEqual([]);
    });

    const invalidDigests = ['nope', 'sha256:xyz', `sha256:${'A'.repeat(64)}`, `md5:${'0'.repeat(32)}`, `sha256:${'0'.repeat(63)}`, `sha256:../../${'0'.repeat(58)}`];

    it('refuses an invalid digest with DIGEST_INVALID (stat, open, delete)', async () => {
      for (const bad of invalidDigests) {
        await expectCode(call(() => store.stat(bad)), 'DIGEST_INVALID');
        await expectCode(call(() => store.open(bad)), 'DIGEST_INVALID');
        await expectCode(call(() => store.delete(bad)), 'DIGEST_INVALID');
      }
    });

    it('refuses an invalid digest with DIGEST_INVALID (writer, resume), as a rejected promise', async () => {
      const w = await store.writer(sha256(Buffer.from('a write to resume')));
      try {
        for (const bad of invalidDigests) {
          await expectCode(call(() => store.writer(bad)), 'DIGEST_INVALID');
          await expectCode(call(() => store.resume(w.id, bad)), 'DIGEST_INVALID');
        }
        expect((await store.listWrites()).map((p) => p.id)).toEqual([w.id]);
      } finally {
        await w.cancel();
      }
    });

    it('commits verified content: stat, whole read, events in order, no pending write left', async () => {
      const bytes = randomBytes(1000);
      const digest = sha256(bytes);
      const w = await store.writer(digest);
      const events: string[] = [];
      w.on('progress', (n) => events.push(`progress:${n}`));
      w.once('verified', () => events.push('verified'));
      w.once('committed', () => events.push('committed'));
      w.once('cancelled', () => events.push('cancelled'));
      expect(w.written).toBe(0);
      await w.append([bytes.subarray(0, 400)]);
      await w.append([bytes.subarray(400, 700), bytes.subarray(700)]);
      expect(w.written).toBe(1000);
      expect(w.reservedBytes).toBe(1000);
      expect(await w.commit({ digest, size: 1000 })).toEqual({ digest, size: 1000 });
      expect(events).toEqual(['progress:400', 'progress:1000', 'verified', 'committed']);
      expect(await store.stat(digest)).toEqual({ digest, size: 1000 });
      const read = await store.open(digest);
      expect(read!.info).toEqual({ digest, size: 1000 });
      expect(read!.range).toBeUndefined();
      expect((await readAll(read)).equals(bytes)).toBe(true);
      expect(await store.listWrites()).toEqual([]);
    });

    it('commits content streamed through the writable view', async () => {
      const chunks = [randomBytes(70_000), randomBytes(1), randomBytes(300_000)];
      const bytes = Buffer.concat(chunks);
      const digest = sha256(bytes);
      const w = await store.writer(digest);
      await pipeline(Readable.from(chunks), w.stream);
      expect(w.written).toBe(bytes.length);
      await w.commit({ digest, size: bytes.length });
      expect((await readAll(await store.open(digest))).equals(bytes)).toBe(true);
    });

    it('commits with an unknown expected size (-1), verifying the digest only', async () => {
      const bytes = Buffer.from('size not known in advance');
      const digest = sha256(bytes);
      const w = await store.writer(digest);
      await w.append([bytes]);
      expect(await w.commit({ digest, size: -1 })).toEqual({ digest, size: bytes.length });
      expect(await store.stat(digest)).toEqual({ digest, size: bytes.length });
    });

    it('commits an empty item', async () => {
      const digest = sha256(Buffer.alloc(0));
      const w = await store.writer(digest);
      expect(await w.commit({ digest, size: 0 })).toEqual({ digest, size: 0 });
      expect(await store.stat(digest)).toEqual({ digest, size: 0 });
      expect((await readAll(await store.open(digest))).length).toBe(0);
      await expectCode(call(() => store.open(digest, { start: 0 })), 'RANGE_INVALID');
    });

    it('refuses a digest mismatch with DIGEST_INVALID: nothing visible, no pending write', async () => {
      const good = Buffer.from('the content the digest names');
      const digest = sha256(good);
      const w = await store.writer(digest);
      let committed = false;
      w.once('committed', () => (committed = true));
      await w.append([Buffer.from('the content the digest nameZ')]);
      const err = await expectCode(w.commit({ digest, size: good.length }), 'DIGEST_INVALID');
      expect(err.status).toBe(400);
      expect(committed).toBe(false);
      expect(await store.stat(digest)).toBeUndefined();
      expect(await store.open(digest)).toBeUndefined();
      expect(await store.list()).toEqual([]);
      expect(await store.listWrites()).toEqual([]);
      expect(await store.resume(w.id, digest)).toBeUndefined();
      await w.cancel(); // still safe after a failed commit
    });

    it('refuses a size mismatch with SIZE_INVALID (short and long): nothing visible, no pending write', async () => {
      const bytes = randomBytes(5000);
      const digest = sha256(bytes);
      const short = await store.writer(digest);
      await short.append([bytes.subarray(0, 4999)]);
      await expectCode(short.commit({ digest, size: 5000 }), 'SIZE_INVALID');
      const long = await store.writer(digest);
      await long.append([bytes, Buffer.from('x')]);
      await expectCode(long.commit({ digest, size: 5000 }), 'SIZE_INVALID');
      // The right size but a hash of other bytes of that size is a digest error, not a size one.
      const same = await store.writer(digest);
      await same.append([randomBytes(5000)]);
      await expectCode(same.commit({ digest, size: 5000 }), 'DIGEST_INVALID');
      expect(await store.stat(digest)).toBeUndefined();
      expect(await store.listWrites()).toEqual([]);
    });

    it('refuses to commit under a digest of another algorithm than the writer hashes with', async () => {
      const bytes = Buffer.from('hashed with sha256');
      const w = await store.writer(sha256(bytes));
      await w.append([bytes]);
      await expectCode(w.commit({ digest: sha512(bytes), size: bytes.length }), 'DIGEST_INVALID');
      expect(await store.stat(sha512(bytes))).toBeUndefined();
      expect(await store.stat(sha256(bytes))).toBeUndefined();
      expect(await store.listWrites()).toEqual([]);
    });

    it('stores sha512 content', async () => {
      const bytes = randomBytes(333);
      const digest = await putContent(store, bytes, sha512(bytes));
      expect(await store.stat(digest)).toEqual({ digest, size: 333 });
      expect((await readAll(await store.open(digest))).equals(bytes)).toBe(true);
    });

    it('serves ranges: start-end, open-ended, clamped end, suffix; RANGE_INVALID when unsatisfiable', async () => {
      const bytes = randomBytes(1000);
      const digest = await putContent(store, bytes);
      const cases: { req: Parameters<ContentStore['open']>[1]; start: number; end: number }[] = [
        { req: { start: 10, end: 19 }, start: 10, end: 19 },
        { req: { start: 0, end: 0 }, start: 0, end: 0 },
        { req: { start: 990 }, start: 990, end: 999 },
        { req: { start: 999 }, start: 999, end: 999 },
        { req: { start: 995, end: 5000 }, start: 995, end: 999 },
        { req: { suffix: 100 }, start: 900, end: 999 },
        { req: { suffix: 5000 }, start: 0, end: 999 },
      ];
      for (const c of cases) {
        const read = await store.open(digest, c.req);
        expect(read!.info).toEqual({ digest, size: 1000 });
        expect(read!.range).toEqual({ start: c.start, end: c.end });
        expect((await readAll(read)).equals(bytes.subarray(c.start, c.end + 1))).toBe(true);
      }
      for (const req of [{ start: 1000 }, { start: 5000, end: 6000 }, { suffix: 0 }]) {
        const err = await expectCode(call(() => store.open(digest, req)), 'RANGE_INVALID');
        expect(err.status).toBe(416);
      }
      // Still readable whole after the refusals.
      expect((await readAll(await store.open(digest))).equals(bytes)).toBe(true);
    });

    it('a reader of a growing write sees only the written prefix, and keeps reading across the commit', async () => {
      const bytes = randomBytes(256 * 1024 + 17);
      const digest = sha256(bytes);
      const w = await store.writer(digest);
      const reader = await w.openReader();
      try {
        // Every prefix a progress event announces is readable, and holds exactly those bytes.
        const checks: Promise<void>[] = [];
        let last = 0;
        w.on('progress', (n) => {
          expect(n).toBeGreaterThan(last);
          expect(n).toBeLessThanOrEqual(w.reservedBytes);
          last = n;
          checks.push(reader.read(0, n).then((got) => expect(got.equals(bytes.subarray(0, n))).toBe(true)));
        });
        // Overlapping appends of uneven sizes, none awaited before the next starts.
        const appends: Promise<void>[] = [];
        let at = 0;
        for (let i = 1; at < bytes.length; i++) {
          const end = Math.min(bytes.length, at + ((i * 7919) % 20_000) + 1);
          appends.push(w.append([bytes.subarray(at, end)]));
          at = end;
          expect(w.reservedBytes).toBe(at);
          expect(w.written).toBeLessThanOrEqual(w.reservedBytes);
        }
        await Promise.all(appends);
        await Promise.all(checks);
        expect(last).toBe(bytes.length);
        expect(w.written).toBe(bytes.length);
        expect((await reader.read(1000, 500)).equals(bytes.subarray(1000, 1500))).toBe(true);
        await w.commit({ digest, size: bytes.length });
        // The reader opened before the commit reads on after it, and after a delete of the item.
        expect((await reader.read(0, bytes.length)).equals(bytes)).toBe(true);
        expect(await store.delete(digest)).toBe(true);
        expect((await reader.read(bytes.length - 100, 100)).equals(bytes.subarray(bytes.length - 100))).toBe(true);
      } finally {
        await reader.close();
      }
    });

    it('openReader follows a write step by step, and one opened after the commit reads the item', async () => {
      const a = randomBytes(3000);
      const b = randomBytes(5000);
      const whole = Buffer.concat([a, b]);
      const digest = sha256(whole);
      const w = await store.writer(digest);
      await w.append([a]);
      const r1 = await w.openReader();
      expect((await r1.read(0, w.written)).equals(a)).toBe(true);
      await pipeline(Readable.from([b]), w.stream);
      expect(w.written).toBe(whole.length);
      expect((await r1.read(a.length, b.length)).equals(b)).toBe(true);
      await w.commit({ digest, size: whole.length });
      const r2 = await w.openReader();
      expect((await r2.read(0, whole.length)).equals(whole)).toBe(true);
      expect((await r1.read(0, whole.length)).equals(whole)).toBe(true);
      await r1.close();
      await r2.close();
    });

    it('cancel drops the write, is safe twice, and emits cancelled once', async () => {
      const bytes = randomBytes(10_000);
      const digest = sha256(bytes);
      const w = await store.writer(digest);
      let cancelled = 0;
      w.once('cancelled', () => cancelled++);
      await w.append([bytes]);
      expect((await store.listWrites()).map((p) => p.id)).toEqual([w.id]);
      await w.cancel();
      await w.cancel();
      expect(cancelled).toBe(1);
      expect(await store.listWrites()).toEqual([]);
      expect(await store.resume(w.id, digest)).toBeUndefined();
      expect(await store.stat(digest)).toBeUndefined();
      await expect(w.commit({ digest, size: bytes.length })).rejects.toBeInstanceOf(MirrorgateError);
      expect(await store.stat(digest)).toBeUndefined();
      await expect(w.append([Buffer.from('late')])).rejects.toBeInstanceOf(MirrorgateError);
    });

    it('cancel after commit does nothing: the item stays', async () => {
      const bytes = randomBytes(2048);
      const digest = sha256(bytes);
      const w = await store.writer(digest);
      let cancelled = false;
      w.once('cancelled', () => (cancelled = true));
      await w.append([bytes]);
      await w.commit({ digest, size: bytes.length });
      await w.cancel();
      await w.cancel();
      expect(cancelled).toBe(false);
      expect(await store.stat(digest)).toEqual({ digest, size: 2048 });
      expect((await readAll(await store.open(digest))).equals(bytes)).toBe(true);
      await expect(w.commit({ digest, size: bytes.length })).rejects.toBeInstanceOf(MirrorgateError);
      expect(await store.stat(digest)).toEqual({ digest, size: 2048 });
    });

    it('delete while a reader streams: the reader finishes with the full bytes; the item is gone for new reads', async () => {
      const bytes = randomBytes(4 * MiB + 3);
      const digest = await putContent(store, bytes);
      const whole = await store.open(digest);
      const ranged = await store.open(digest, { start: MiB, end: 3 * MiB - 1 });
      const it1 = whole!.body[Symbol.asyncIterator]();
      const first = await it1.next();
      expect(first.done).toBe(false);
      expect(await store.delete(digest)).toBe(true);
      expect(await store.delete(digest)).toBe(false);
      expect(await store.stat(digest)).toBeUndefined();
      expect(await store.open(digest)).toBeUndefined();
      expect((await store.list()).map((e) => e.digest)).not.toContain(digest);
      const chunks: Buffer[] = [first.value as Buffer];
      for (let r = await it1.next(); !r.done; r = await it1.next()) chunks.push(r.value as Buffer);
      expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
      expect((await readAll(ranged)).equals(bytes.subarray(MiB, 3 * MiB))).toBe(true);
      // Stored again after the delete, it is visible again.
      await putContent(store, bytes);
      expect(await store.stat(digest)).toEqual({ digest, size: bytes.length });
    });

    it('lists in digest order, paginated with after/limit over 300 items (two algorithms)', async () => {
      const items = Array.from({ length: 300 }, (_, i) => Buffer.from(`item ${i} ${'x'.repeat(i % 17)}`));
      const digests: string[] = [];
      for (let i = 0; i < items.length; i += 20) {
        digests.push(...(await Promise.all(items.slice(i, i + 20).map((b) => putContent(store, b)))));
      }
      digests.push(await putContent(store, items[0]!, sha512(items[0]!)), await putContent(store, items[1]!, sha512(items[1]!)));
      const sizes = new Map<string, number>();
      items.forEach((b, i) => sizes.set(digests[i]!, b.length));
      sizes.set(digests[300]!, items[0]!.length).set(digests[301]!, items[1]!.length);
      const sorted = [...digests].sort();
      expect(sorted.slice(-2).every((d) => d.startsWith('sha512:'))).toBe(true);

      const all = await store.list();
      expect(all.map((e) => e.digest)).toEqual(sorted);
      for (const e of all) {
        expect(e.size).toBe(sizes.get(e.digest));
        expect(Number.isFinite(e.storedAt)).toBe(true);
      }

      const paged: string[] = [];
      let after: string | undefined;
      for (let pages = 0; pages < 100; pages++) {
        const page = await store.list(after === undefined ? { limit: 7 } : { after, limit: 7 });
        expect(page.length).toBeLessThanOrEqual(7);
        if (page.length === 0) break;
        paged.push(...page.map((e) => e.digest));
        after = page[page.length - 1]!.digest;
      }
      expect(paged).toEqual(sorted);

      // `after` is exclusive and need not be held.
      expect((await store.list({ after: sorted[150]!, limit: 3 })).map((e) => e.digest)).toEqual(sorted.slice(151, 154));
      const last = sorted[10]!.at(-1)!;
      const between = `${sorted[10]!.slice(0, -1)}${last === 'f' ? 'f' : (parseInt(last, 16) + 1).toString(16)}`;
      expect((await store.list({ after: between })).map((e) => e.digest)).toEqual(sorted.filter((d) => d > between));
      expect((await store.list({ after: sorted[299]! })).map((e) => e.digest)).toEqual(sorted.slice(300));
      expect(await store.list({ after: sorted[301]! })).toEqual([]);
      expect((await store.list({ limit: 1000 })).length).toBe(302);
    });

    it('a limit of 0 lists nothing', async () => {
      await putContent(store, Buffer.from('one'));
      expect(await store.list({ limit: 0 })).toEqual([]);
    });

    it('concurrent writers of one digest both commit; the content is right and stored once', async () => {
      const bytes = randomBytes(512 * 1024);
      const digest = sha256(bytes);
      const w1 = await store.writer(digest);
      const w2 = await store.writer(digest);
      expect(w1.id).not.toBe(w2.id);
      const half = bytes.length / 2;
      await w1.append([bytes.subarray(0, half)]);
      await w2.append([bytes.subarray(0, half)]);
      await Promise.all([w2.append([bytes.subarray(half)]), w1.append([bytes.subarray(half)])]);
      const [c1, c2] = await Promise.all([w1.commit({ digest, size: bytes.length }), w2.commit({ digest, size: bytes.length })]);
      expect(c1).toEqual({ digest, size: bytes.length });
      expect(c2).toEqual({ digest, size: bytes.length });
      expect((await readAll(await store.open(digest))).equals(bytes)).toBe(true);
      expect(await store.list()).toHaveLength(1);
      expect(await store.listWrites()).toEqual([]);
    });

    it('a writer of content already held commits again without harm', async () => {
      const bytes = randomBytes(4096);
      const digest = await putContent(store, bytes);
      const reader = await store.open(digest);
      await putContent(store, bytes);
      expect((await readAll(reader)).equals(bytes)).toBe(true);
      expect((await readAll(await store.open(digest))).equals(bytes)).toBe(true);
      expect(await store.list()).toHaveLength(1);
    });

    it('resumes a write by id after the writer object is dropped: bytes kept, hashing continues, commit verifies the whole', async () => {
      const bytes = randomBytes(3 * MiB + 5);
      const digest = sha256(bytes);
      const cut = 2 * MiB + 1;
      // Dropped: neither committed nor cancelled, as after a restart (cancelled only at the end, to close it).
      const dropped = await store.writer(digest);
      await dropped.append([bytes.subarray(0, cut)]);
      const id = dropped.id;
      expect((await store.listWrites()).find((p) => p.id === id)?.size).toBe(cut);
      const resumed = await store.resume(id, digest);
      expect(resumed).toBeDefined();
      const w = resumed!;
      expect(w.id).toBe(id);
      expect(w.written).toBe(cut);
      expect(w.reservedBytes).toBe(cut);
      const reader = await w.openReader();
      expect((await reader.read(0, cut)).equals(bytes.subarray(0, cut))).toBe(true);
      await w.append([bytes.subarray(cut)]);
      expect(w.written).toBe(bytes.length);
      await w.commit({ digest, size: bytes.length });
      await reader.close();
      expect((await readAll(await store.open(digest))).equals(bytes)).toBe(true);
      expect(await store.listWrites()).toEqual([]);
      expect(await store.resume(id, digest)).toBeUndefined();
      await dropped.cancel(); // the write it started is committed: this drops nothing
      expect((await readAll(await store.open(digest))).equals(bytes)).toBe(true);
    });

    it('a resumed write is verified over the bytes from before the resume too', async () => {
      const intended = randomBytes(100_000);
      const digest = sha256(intended);
      const first = await store.writer(digest);
      const corrupted = Buffer.from(intended.subarray(0, 60_000));
      corrupted[123] = corrupted[123]! ^ 0xff;
      await first.append([corrupted]);
      const w = (await store.resume(first.id, digest))!;
      await w.append([intended.subarray(60_000)]);
      await expectCode(w.commit({ digest, size: intended.length }), 'DIGEST_INVALID');
      expect(await store.stat(digest)).toBeUndefined();
      expect(await store.listWrites()).toEqual([]);
      await first.cancel();
    });

    it('resume of a write that is gone is undefined', async () => {
      const digest = sha256(Buffer.from('x'));
      const cancelled = await store.writer(digest);
      await cancelled.cancel();
      expect(await store.resume(cancelled.id, digest)).toBeUndefined();
      const committed = await store.writer(digest);
      await committed.append([Buffer.from('x')]);
      await committed.commit({ digest, size: 1 });
      expect(await store.resume(committed.id, digest)).toBeUndefined();
    });

    it('listWrites lists writes in progress with their sizes; deleteWrite drops one', async () => {
      const digest = sha256(Buffer.from('pending'));
      const before = Date.now();
      const a = await store.writer(digest);
      await a.append([Buffer.alloc(10, 1)]);
      const b = await store.writer(digest);
      const pending = await store.listWrites();
      expect(pending.map((p) => p.id).sort()).toEqual([a.id, b.id].sort());
      expect(pending.find((p) => p.id === a.id)!.size).toBe(10);
      expect(pending.find((p) => p.id === b.id)!.size).toBe(0);
      for (const p of pending) expect(p.modifiedAt).toBeGreaterThanOrEqual(before - 2000);
      await store.deleteWrite(a.id);
      expect((await store.listWrites()).map((p) => p.id)).toEqual([b.id]);
      expect(await store.resume(a.id, digest)).toBeUndefined();
      await store.deleteWrite(a.id); // gone already: no error
      await a.cancel();
      await b.cancel();
      expect(await store.listWrites()).toEqual([]);
    });

    it('streams 96 MiB in and out (through stream and append) with flat memory', async () => {
      // A store that held the item in memory would grow by more than its size; garbage the test itself makes
      // (a fresh buffer per chunk) and a loaded machine's late collections take some of the rest.
      const total = 96 * MiB;
      const bound = 64 * MiB;
      // Reproducible chunks, a fresh buffer each (a writer may hold a chunk until its write completes).
      const seed = randomBytes(32);
      function* chunks(): Generator<Buffer> {
        for (let i = 0; i < total / MiB; i++) {
          const b = Buffer.allocUnsafe(MiB);
          const block = createHash('sha512').update(seed).update(String(i)).digest();
          for (let o = 0; o < MiB; o += block.length) block.copy(b, o);
          yield b;
        }
      }
      const h = createHash('sha256');
      for (const c of chunks()) h.update(c);
      const digest = `sha256:${h.digest('hex')}`;
      const readBack = async (sample: () => void): Promise<void> => {
        const back = createHash('sha256');
        let n = 0;
        for await (const c of (await store.open(digest))!.body) {
          back.update(c as Buffer);
          n += (c as Buffer).length;
          sample();
        }
        expect(n).toBe(total);
        expect(`sha256:${back.digest('hex')}`).toBe(digest);
      };

      const viaStream = await peakRssGrowth(async (sample) => {
        const w = await store.writer(digest);
        const sampled = function* (): Generator<Buffer> {
          for (const c of chunks()) {
            sample();
            yield c;
          }
        };
        await pipeline(Readable.from(sampled()), w.stream);
        await w.commit({ digest, size: total });
        await readBack(sample);
      });
      expect(await store.delete(digest)).toBe(true);

      const viaAppend = await peakRssGrowth(async (sample) => {
        const w = await store.writer(digest);
        const batch: Buffer[] = [];
        for (const c of chunks()) {
          batch.push(c);
          if (batch.length === 4) await w.append(batch.splice(0));
          sample();
        }
        await w.commit({ digest, size: total });
        await readBack(sample);
      });
      expect(viaStream, `rss grew ${(viaStream / MiB).toFixed(1)} MiB through stream`).toBeLessThan(bound);
      expect(viaAppend, `rss grew ${(viaAppend / MiB).toFixed(1)} MiB through append`).toBeLessThan(bound);
    }, 120_000);
  });
}

const A: RepositoryRef = { upstream: 'docker.io', path: 'library/nginx' };
const B: RepositoryRef = { upstream: 'docker.io', path: 'library/redis' };
/** The same path as A under another upstream: a different repository. */
const C: RepositoryRef = { upstream: 'ghcr.io', path: 'library/nginx' };
/** Nested under A's path: a different repository too. */
const A_NESTED: RepositoryRef = { upstream: 'docker.io', path: 'library/nginx/sub' };
const PORTED: RepositoryRef = { upstream: 'localhost:5000', path: 'team/app' };

function digestOf(text: string): string {
  return sha256(Buffer.from(text));
}

function tagRecord(text: string, checkedAt = 1_700_000_000_000): TagRecord {
  return { digest: digestOf(text), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: text.length, checkedAt };
}

function descriptor(text: string, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(text), size: text.length, artifactType: 'application/example', ...extra };
}

function byRepository(a: RepositoryRef, b: RepositoryRef): number {
  if (a.upstream !== b.upstream) return a.upstream < b.upstream ? -1 : 1;
  if (a.path !== b.path) return a.path < b.path ? -1 : 1;
  return 0;
}

function session(id: string, repo: RepositoryRef, offset: number): UploadSession {
  return { id, repo, writeId: `write-of-${id}`, offset, startedAt: 1_700_000_000_000, updatedAt: 1_700_000_000_000 + offset };
}

export function describeMetadataStoreContract(name: string, makeStore: () => Promise<MetadataStoreHarness>): void {
  describe(`MetadataStore contract: ${name}`, () => {
    let store: MetadataStore;
    let cleanup: () => Promise<void>;
    let elapse: (ms: number) => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup, elapse } = await makeStore());
    });
    afterEach(async () => {
      await cleanup();
    });

    describe('tags', () => {
      it('put, get, overwrite, delete', async () => {
        expect(await store.getTag(A, 'latest')).toBeUndefined();
        await store.putTag(A, 'latest', tagRecord('one'));
        expect(await store.getTag(A, 'latest')).toEqual(tagRecord('one'));
        await store.putTag(A, 'latest', tagRecord('two', 1_700_000_000_500));
        expect(await store.getTag(A, 'latest')).toEqual(tagRecord('two', 1_700_000_000_500));
        expect(await store.deleteTag(A, 'latest')).toBe(true);
        expect(await store.getTag(A, 'latest')).toBeUndefined();
        expect(await store.deleteTag(A, 'latest')).toBe(false);
        expect(await store.listTags(A)).toEqual([]);
      });

      it('lists tags sorted, with their records and updatedAt', async () => {
        const names = ['v1.2', 'latest', 'v1-alpine', 'v1', 'V2', 'v1_rc', '1.0', 'v10'];
        for (const t of names) await store.putTag(A, t, tagRecord(t));
        await store.putTag(A, 'v1', tagRecord('v1 again'));
        const listed = await store.listTags(A);
        expect(listed.map((t) => t.tag)).toEqual([...names].sort());
        for (const t of listed) {
          expect(t.record).toEqual(tagRecord(t.tag === 'v1' ? 'v1 again' : t.tag));
          expect(Number.isFinite(t.updatedAt)).toBe(true);
        }
      });

      it('tags are per repository (upstream and path)', async () => {
        await store.putTag(A, 'latest', tagRecord('a'));
        await store.putTag(C, 'latest', tagRecord('c'));
        expect(await store.getTag(B, 'latest')).toBeUndefined();
        expect(await store.getTag(A_NESTED, 'latest')).toBeUndefined();
        expect(await store.getTag(C, 'latest')).toEqual(tagRecord('c'));
        expect(await store.getTag(A, 'latest')).toEqual(tagRecord('a'));
        expect(await store.listTags(B)).toEqual([]);
        expect(await store.listTags(A_NESTED)).toEqual([]);
        expect(await store.deleteTag(B, 'latest')).toBe(false);
        expect(await store.deleteTag(C, 'latest')).toBe(true);
        expect(await store.getTag(A, 'latest')).toEqual(tagRecord('a'));
      });
    });

    describe('links', () => {
      it('link, isLinked, idempotent link, unlink', async () => {
        const d = digestOf('manifest');
        expect(await store.isLinked(A, 'manifest', d)).toBe(false);
        await store.link(A, 'manifest', d);
        await store.link(A, 'manifest', d);
        expect(await store.isLinked(A, 'manifest', d)).toBe(true);
        const links = await store.listLinks(A, 'manifest');
        expect(links.map((l) => l.digest)).toEqual([d]);
        expect(Number.isFinite(links[0]!.linkedAt)).toBe(true);
        expect(await store.unlink(A, 'manifest', d)).toBe(true);
        expect(await store.isLinked(A, 'manifest', d)).toBe(false);
        expect(await store.unlink(A, 'manifest', d)).toBe(false);
        expect(await store.listLinks(A, 'manifest')).toEqual([]);
      });

      it('kinds are separate', async () => {
        const d = digestOf('content');
        await store.link(A, 'blob', d);
        expect(await store.isLinked(A, 'blob', d)).toBe(true);
        expect(await store.isLinked(A, 'manifest', d)).toBe(false);
        expect(await store.listLinks(A, 'manifest')).toEqual([]);
        expect(await store.unlink(A, 'manifest', d)).toBe(false);
        expect(await store.isLinked(A, 'blob', d)).toBe(true);
      });

      it('a link in one repository is not visible in another (repository scoping)', async () => {
        const d = digestOf('layer');
        await store.link(A, 'blob', d);
        await store.link(A, 'manifest', d);
        for (const other of [B, C, A_NESTED, PORTED]) {
          expect(await store.isLinked(other, 'blob', d)).toBe(false);
          expect(await store.isLinked(other, 'manifest', d)).toBe(false);
          expect(await store.listLinks(other, 'blob')).toEqual([]);
          expect(await store.unlink(other, 'blob', d)).toBe(false);
        }
        await store.link(A_NESTED, 'blob', d);
        expect(await store.unlink(A, 'blob', d)).toBe(true);
        expect(await store.isLinked(A_NESTED, 'blob', d)).toBe(true);
        expect(await store.isLinked(A, 'blob', d)).toBe(false);
        expect(await store.isLinked(A, 'manifest', d)).toBe(true);
      });

      it('lists links in digest order', async () => {
        const digests = Array.from({ length: 40 }, (_, i) => digestOf(`blob ${i}`));
        const big = sha512(Buffer.from('sha512 blob'));
        for (const d of [...digests, big]) await store.link(A, 'blob', d);
        expect((await store.listLinks(A, 'blob')).map((l) => l.digest)).toEqual([...digests, big].sort());
      });

      it('refuses an invalid digest with DIGEST_INVALID', async () => {
        await expectCode(call(() => store.link(A, 'blob', 'sha256:../../x')), 'DIGEST_INVALID');
        await expectCode(call(() => store.isLinked(A, 'blob', 'nope')), 'DIGEST_INVALID');
        expect(await store.listRepositories()).toEqual([]);
      });
    });

    describe('referrers', () => {
      it('put (same digest replaces), list per subject and repository, listAll, delete', async () => {
        const subject = digestOf('subject');
        const other = digestOf('other subject');
        const r1 = descriptor('sig');
        const r2 = descriptor('sbom', { annotations: { 'org.example': 'yes' } });
        await store.putReferrer(A, subject, r1);
        await store.putReferrer(A, subject, r2);
        await store.putReferrer(A, other, r1);
        const r1b = { ...r1, annotations: { replaced: 'true' } };
        await store.putReferrer(A, subject, r1b);
        const bySubject = (list: Descriptor[]): Descriptor[] => [...list].sort((x, y) => (x.digest < y.digest ? -1 : 1));
        expect(bySubject(await store.listReferrers(A, subject))).toEqual(bySubject([r1b, r2]));
        expect(await store.listReferrers(A, other)).toEqual([r1]);
        expect(await store.listReferrers(A, digestOf('nobody'))).toEqual([]);
        expect(await store.listReferrers(B, subject)).toEqual([]);
        expect(await store.listReferrers(C, subject)).toEqual([]);

        const all = await store.listAllReferrers(A);
        const key = (e: { subject: string; descriptor: Descriptor }): string => `${e.subject} ${e.descriptor.digest}`;
        expect([...all].sort((x, y) => (key(x) < key(y) ? -1 : 1))).toEqual(
          [
            { subject, descriptor: r1b },
            { subject, descriptor: r2 },
            { subject: other, descriptor: r1 },
          ].sort((x, y) => (key(x) < key(y) ? -1 : 1)),
        );
        expect(await store.listAllReferrers(B)).toEqual([]);

        expect(await store.deleteReferrer(A, subject, r1.digest)).toBe(true);
        expect(await store.deleteReferrer(A, subject, r1.digest)).toBe(false);
        expect(await store.deleteReferrer(B, other, r1.digest)).toBe(false);
        expect(await store.listReferrers(A, subject)).toEqual([r2]);
        expect(await store.listReferrers(A, other)).toEqual([r1]);
      });
    });

    describe('catalog', () => {
      it('lists repositories holding a tag or a link, and drops one when its last record goes', async () => {
        expect(await store.listRepositories()).toEqual([]);
        const d = digestOf('m');
        await store.putTag(A, 'latest', tagRecord('m'));
        await store.link(A, 'manifest', d);
        await store.link(B, 'blob', d);
        await store.putTag(PORTED, 'v1', tagRecord('p'));
        await store.link(C, 'manifest', d);
        expect(await store.listRepositories()).toEqual([A, B, C, PORTED].sort(byRepository));

        expect(await store.deleteTag(A, 'latest')).toBe(true);
        expect(await store.listRepositories()).toContainEqual(A); // still holds a link
        expect(await store.unlink(A, 'manifest', d)).toBe(true);
        expect(await store.unlink(B, 'blob', d)).toBe(true);
        expect(await store.deleteTag(PORTED, 'v1')).toBe(true);
        expect(await store.listRepositories()).toEqual([C]);
        expect(await store.unlink(C, 'manifest', d)).toBe(true);
        expect(await store.listRepositories()).toEqual([]);
      });

      it('a nested repository is listed on its own, and outlives its parent', async () => {
        const d = digestOf('n');
        await store.link(A, 'blob', d);
        await store.putTag(A_NESTED, 'latest', tagRecord('n'));
        expect(await store.listRepositories()).toEqual([A, A_NESTED]);
        expect(await store.unlink(A, 'blob', d)).toBe(true);
        expect(await store.listRepositories()).toEqual([A_NESTED]);
      });

      it('sorts by upstream, then path (plain string order)', async () => {
        const paths = ['library/a', 'library/a/b', 'library/a-c', 'library/a.d', 'library/a_e', 'library/ab', 'library/a__f', 'z', 'library0/x'];
        const upstreams = ['docker.io', 'ghcr.io', 'localhost:5000', '[::1]:5000', 'docker.io:443'];
        const repos: RepositoryRef[] = [];
        for (const upstream of upstreams) for (const path of paths) repos.push({ upstream, path });
        for (const r of repos) await store.link(r, 'manifest', digestOf(`${r.upstream}/${r.path}`));
        expect(await store.listRepositories()).toEqual([...repos].sort(byRepository));
      });
    });

    describe('upload sessions', () => {
      it('put (replacing), get, list, delete', async () => {
        expect(await store.getUpload('u1')).toBeUndefined();
        expect(await store.listUploads()).toEqual([]);
        await store.putUpload(session('u1', A, 0));
        await store.putUpload(session('u2', B, 10));
        await store.putUpload(session('u1', A, 4096));
        expect(await store.getUpload('u1')).toEqual(session('u1', A, 4096));
        expect([...(await store.listUploads())].sort((x, y) => (x.id < y.id ? -1 : 1))).toEqual([session('u1', A, 4096), session('u2', B, 10)]);
        expect(await store.deleteUpload('u1')).toBe(true);
        expect(await store.deleteUpload('u1')).toBe(false);
        expect(await store.getUpload('u1')).toBeUndefined();
        expect(await store.listUploads()).toEqual([session('u2', B, 10)]);
      });

      it('upload sessions are not repositories of the catalog', async () => {
        await store.putUpload(session('u1', A, 0));
        expect(await store.listRepositories()).toEqual([]);
      });
    });

    describe('access times', () => {
      it('save merges (newer wins), forgotten keys are dropped, load returns a copy', async () => {
        expect((await store.loadAccessTimes()).size).toBe(0);
        await store.saveAccessTimes(new Map([['k1', 100], ['k2', 200]]));
        expect(await store.loadAccessTimes()).toEqual(new Map([['k1', 100], ['k2', 200]]));
        await store.saveAccessTimes(new Map([['k1', 50], ['k2', 300], ['k3', 10]]));
        expect(await store.loadAccessTimes()).toEqual(new Map([['k1', 100], ['k2', 300], ['k3', 10]]));
        await store.saveAccessTimes(new Map([['k4', 5]]), ['k1', 'never-saved']);
        expect(await store.loadAccessTimes()).toEqual(new Map([['k2', 300], ['k3', 10], ['k4', 5]]));
        await store.saveAccessTimes(new Map(), ['k3']);
        const loaded = await store.loadAccessTimes();
        expect(loaded).toEqual(new Map([['k2', 300], ['k4', 5]]));
        loaded.set('k9', 1);
        loaded.delete('k2');
        expect(await store.loadAccessTimes()).toEqual(new Map([['k2', 300], ['k4', 5]]));
      });

      it('overlapping saves are all kept', async () => {
        await Promise.all(Array.from({ length: 20 }, (_, i) => store.saveAccessTimes(new Map([[`k${i}`, i + 1], ['shared', i]]))));
        const loaded = await store.loadAccessTimes();
        expect(loaded.size).toBe(21);
        for (let i = 0; i < 20; i++) expect(loaded.get(`k${i}`)).toBe(i + 1);
        expect(loaded.get('shared')).toBe(19);
      });
    });

    describe('leases', () => {
      it('one holder at a time; renew extends; expiry lets another take over; the old holder loses it', async () => {
        // Some stores expire on the real clock (Redis): every step leaves a loaded machine a second of slack.
        const first = await store.acquireLease('gc', 'p1', 3000);
        expect(first).toBeDefined();
        expect(first!.name).toBe('gc');
        expect(first!.holder).toBe('p1');
        expect(await store.acquireLease('gc', 'p2', 3000)).toBeUndefined();
        await elapse(2000);
        expect(await first!.renew(3000)).toBe(true);
        await elapse(2000); // 4000 after the start: alive only because it was renewed
        expect(await store.acquireLease('gc', 'p2', 3000)).toBeUndefined();
        await elapse(3500);
        const second = await store.acquireLease('gc', 'p2', 3000);
        expect(second).toBeDefined();
        expect(second!.holder).toBe('p2');
        expect(await first!.renew(3000)).toBe(false);
        await first!.release(); // a lost lease's release must not free the new holder's
        expect(await store.acquireLease('gc', 'p3', 3000)).toBeUndefined();
        expect(await second!.renew(3000)).toBe(true);
      });

      it('release frees the lease at once; names are independent', async () => {
        const a = await store.acquireLease('fetch:x', 'p1', 60_000);
        const b = await store.acquireLease('fetch:y', 'p2', 60_000);
        expect(a).toBeDefined();
        expect(b).toBeDefined();
        await a!.release();
        await a!.release();
        const again = await store.acquireLease('fetch:x', 'p3', 60_000);
        expect(again).toBeDefined();
        expect(await a!.renew(60_000)).toBe(false);
        expect(await store.acquireLease('fetch:y', 'p3', 60_000)).toBeUndefined();
        expect(await b!.renew(60_000)).toBe(true);
        await again!.release();
        await b!.release();
      });
    });

    describe('hostile names', () => {
      const escaping: RepositoryRef[] = [
        { upstream: 'docker.io', path: '../x' },
        { upstream: 'docker.io', path: 'library/../../../x' },
        { upstream: 'docker.io', path: 'library/..' },
        { upstream: 'docker.io', path: '/etc' },
        { upstream: 'docker.io', path: '' },
        { upstream: '..', path: 'x' },
        { upstream: '../..', path: 'x' },
        { upstream: 'docker.io/..', path: 'x' },
      ];

      it('refuses a repository that would escape with NAME_INVALID, for every operation', async () => {
        const d = digestOf('x');
        for (const repo of escaping) {
          await expectCode(call(() => store.putTag(repo, 'latest', tagRecord('x'))), 'NAME_INVALID');
          await expectCode(call(() => store.getTag(repo, 'latest')), 'NAME_INVALID');
          await expectCode(call(() => store.deleteTag(repo, 'latest')), 'NAME_INVALID');
          await expectCode(call(() => store.listTags(repo)), 'NAME_INVALID');
          await expectCode(call(() => store.link(repo, 'blob', d)), 'NAME_INVALID');
          await expectCode(call(() => store.isLinked(repo, 'manifest', d)), 'NAME_INVALID');
          await expectCode(call(() => store.unlink(repo, 'blob', d)), 'NAME_INVALID');
          await expectCode(call(() => store.listLinks(repo, 'blob')), 'NAME_INVALID');
          await expectCode(call(() => store.putReferrer(repo, d, descriptor('r'))), 'NAME_INVALID');
          await expectCode(call(() => store.listReferrers(repo, d)), 'NAME_INVALID');
          await expectCode(call(() => store.listAllReferrers(repo)), 'NAME_INVALID');
          await expectCode(call(() => store.deleteReferrer(repo, d, d)), 'NAME_INVALID');
        }
        expect(await store.listRepositories()).toEqual([]);
      });

      it('refuses a tag that would escape with TAG_INVALID', async () => {
        const tag = '../../../../../../escape';
        await expectCode(call(() => store.putTag(A, tag, tagRecord('x'))), 'TAG_INVALID');
        await expectCode(call(() => store.getTag(A, tag)), 'TAG_INVALID');
        await expectCode(call(() => store.deleteTag(A, tag)), 'TAG_INVALID');
        expect(await store.listRepositories()).toEqual([]);
      });

      it('refuses an upload id that would escape', async () => {
        await expect(call(() => store.putUpload(session('../../escape', A, 0)))).rejects.toBeInstanceOf(MirrorgateError);
        await expect(call(() => store.deleteUpload('../../escape'))).rejects.toBeInstanceOf(MirrorgateError);
        expect(await store.listUploads()).toEqual([]);
      });
    });
  });
}
