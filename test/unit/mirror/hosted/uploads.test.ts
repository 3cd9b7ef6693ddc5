import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/common/clock.js';
import { silentLogger } from '../../../../src/common/logger.js';
import { Uploads } from '../../../../src/mirror/hosted/uploads.js';
import { LocalBlobStore } from '../../../../src/mirror/local/local-blob-store.js';
import { FsStorage } from '../../../../src/mirror/store/fs/fs-storage.js';
import { makeTempDir, type TempDir } from '../../../helpers/tmp.js';

const dirs: TempDir[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await d.cleanup();
});

const repo = { upstream: 'hosted', path: 'team/app' };
const HOUR = 3_600_000;

async function setup(clock: ManualClock): Promise<{ storage: FsStorage; uploads: () => Uploads }> {
  const dir = await makeTempDir('mirrorgate-uploads-');
  dirs.push(dir);
  const storage = new FsStorage(dir.path, clock);
  // Each call is a new process on the same storage (what a restart of the mirror is).
  const uploads = (): Uploads =>
    new Uploads({ blobs: new LocalBlobStore(storage), content: storage.blobs, metadata: storage.metadata, clock, logger: silentLogger(), expiryMs: HOUR });
  return { storage, uploads };
}

describe('Uploads: sessions expire', () => {
  it('an idle upload is cancelled after the expiry and its data removed; a busy one stays', async () => {
    const clock = new ManualClock(1_000_000);
    const { storage, uploads } = await setup(clock);
    const u = uploads();
    const idle = await u.start(repo);
    await u.append(repo, idle.id, Readable.from([Buffer.alloc(4096, 1)]));
    const busy = await u.start(repo);
    clock.advance(HOUR - 1000);
    await u.append(repo, busy.id, Readable.from([Buffer.alloc(10, 2)]));
    clock.advance(2000);
    expect(await u.expire()).toBe(1);
    expect((await storage.metadata.listUploads()).map((s) => s.id)).toEqual([busy.id]);
    expect((await storage.blobs.listWrites()).length).toBe(1);
    await expect(u.status(repo, idle.id)).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
    expect(await u.status(repo, busy.id)).toEqual({ id: busy.id, offset: 10 });
  });

  it('expires sessions an earlier run left behind, and their writes', async () => {
    const clock = new ManualClock(1_000_000);
    const { storage, uploads } = await setup(clock);
    const before = uploads();
    const left = await before.start(repo);
    await before.append(repo, left.id, Readable.from([Buffer.alloc(1000, 3)]));
    // A restart: the session survives (prepare keeps its write), and is only dropped once idle too long.
    await storage.prepare();
    const after = uploads();
    expect(await after.status(repo, left.id)).toEqual({ id: left.id, offset: 1000 });
    const fresh = uploads();
    expect(await fresh.expire()).toBe(0);
    clock.advance(HOUR + 1);
    expect(await fresh.expire()).toBe(1);
    expect(await storage.metadata.listUploads()).toEqual([]);
    expect(await storage.blobs.listWrites()).toEqual([]);
  });
});

describe('Uploads: the requests of one push spread over processes', () => {
  it('each process takes up what the others appended: a push alternating between two completes with the right digest', async () => {
    const clock = new ManualClock(1_000_000);
    const dir = await makeTempDir('mirrorgate-uploads-');
    dirs.push(dir);
    // Two workers: each its own view of the one shared storage.
    const worker = (): Uploads => {
      const storage = new FsStorage(dir.path, clock, { shared: true });
      return new Uploads({ blobs: new LocalBlobStore(storage), content: storage.blobs, metadata: storage.metadata, clock, logger: silentLogger(), expiryMs: HOUR });
    };
    const [a, b] = [worker(), worker()];
    const parts = [Buffer.alloc(3000, 1), Buffer.alloc(5000, 2), Buffer.alloc(7000, 3), Buffer.alloc(11, 4)];
    const whole = Buffer.concat(parts);
    const { id } = await a.start(repo);
    let at = 0;
    for (const [i, part] of parts.slice(0, 3).entries()) {
      clock.advance(1);
      const on = i % 2 === 0 ? a : b;
      const range = { start: at, end: at + part.length - 1 };
      expect(await on.append(repo, id, Readable.from([part]), range)).toEqual({ id, offset: at + part.length });
      at += part.length;
    }
    // Back on the first: it must not write at the offset it last saw.
    expect(await a.status(repo, id)).toEqual({ id, offset: at });
    const digest = `sha256:${createHash('sha256').update(whole).digest('hex')}`;
    expect(await b.finish(repo, id, digest, Readable.from([parts[3]!]))).toEqual({ digest, size: whole.length });
    // Closed on one, it is gone on the other too.
    await expect(a.status(repo, id)).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
  });
});
