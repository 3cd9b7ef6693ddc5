import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/common/clock.js';
import type { AccessRecorder } from '../../../../src/mirror/cache/access-tracker.js';
import { loadConfig } from '../../../../src/config/load.js';
import { LocalBlobStore } from '../../../../src/mirror/local/local-blob-store.js';
import { FsStorage } from '../../../../src/mirror/store/fs/fs-storage.js';
import type { RedisMetadataStore } from '../../../../src/mirror/store/redis/redis-metadata-store.js';
import { RedisStorage } from '../../../../src/mirror/store/redis/redis-storage.js';
import { putContent, sha256 } from '../../../helpers/storage-contract.js';
import { makeTempDir, useCleanup } from '../../../helpers/tmp.js';

const PREFIX = '/_mirrorgate/blobs/';
const repo = { upstream: 'docker.io', path: 'library/app' };
const other = { upstream: 'docker.io', path: 'library/other' };

describe('mirror.storage.accelRedirect (config)', () => {
  const mirror = (storage: Record<string, unknown>) => loadConfig({ overrides: { mirror: { storage } } }).mirror.storage;

  it('is off by default, and `{}` turns it on with the default prefix', () => {
    expect(mirror({ path: '/data' }).accelRedirect).toBeUndefined();
    expect(mirror({ path: '/data', accelRedirect: {} }).accelRedirect).toEqual({ prefix: PREFIX });
    expect(mirror({ path: '/data', accelRedirect: { prefix: '/internal/mg-blobs/' } }).accelRedirect).toEqual({ prefix: '/internal/mg-blobs/' });
  });

  it('refuses it with object storage, saying why', () => {
    expect(() => mirror({ s3: { bucket: 'cache' }, accelRedirect: {} })).toThrow(/mirror\.storage\.accelRedirect.*cannot be combined with s3/s);
  });

  it('refuses prefixes that are not a plain absolute URI directory outside the registry API', () => {
    for (const prefix of ['blobs/', '/blobs', '/', '/a/../b/', '/a/./', '/v2/blobs/', '/a b/', '/a%2e/', '//x/']) {
      expect(() => mirror({ path: '/data', accelRedirect: { prefix } }), prefix).toThrow(/mirror\.storage\.accelRedirect\.prefix/);
    }
  });
});

describe('FsStorage.blobAccelPath', () => {
  const cleanup = useCleanup();

  async function storage(opts: { accelPrefix?: string } = {}): Promise<FsStorage> {
    const dir = cleanup.add(await makeTempDir('mg-accel-'));
    const s = new FsStorage(dir.path, new ManualClock(), opts);
    await s.prepare();
    return s;
  }

  it('is absent unless a prefix is configured', async () => {
    expect((await storage()).blobAccelPath).toBeUndefined();
  });

  it('names a stored blob under the prefix (its place below blobs/), and nothing for one not stored', async () => {
    const s = await storage({ accelPrefix: PREFIX });
    const bytes = Buffer.from('accel bytes');
    const digest = sha256(bytes);
    expect(await s.blobAccelPath!(digest)).toBeUndefined();
    await putContent(s.blobs, bytes);
    const hex = digest.slice('sha256:'.length);
    expect(await s.blobAccelPath!(digest)).toBe(`${PREFIX}sha256/${hex.slice(0, 2)}/${hex}`);
    expect(s.layout.blobPath(digest)).toBe(`${s.layout.root}/blobs/sha256/${hex.slice(0, 2)}/${hex}`);
  });

  it('takes only valid digests (nothing a client sends can point elsewhere)', async () => {
    const s = await storage({ accelPrefix: PREFIX });
    await expect(s.blobAccelPath!('sha256:../../state/lock')).rejects.toThrow();
  });

  it('passes through the Redis wrapper', async () => {
    const s = await storage({ accelPrefix: PREFIX });
    const bytes = Buffer.from('through redis');
    await putContent(s.blobs, bytes);
    // The wrapper's constructor only keeps its metadata store; this test reads content paths only.
    const wrapped = new RedisStorage(s, s.metadata as unknown as RedisMetadataStore, 'redis://nowhere');
    expect(await wrapped.blobAccelPath!(sha256(bytes))).toBe(await s.blobAccelPath!(sha256(bytes)));
    expect(new RedisStorage(await storage(), s.metadata as unknown as RedisMetadataStore, 'redis://nowhere').blobAccelPath).toBeUndefined();
  });
});

describe('LocalBlobStore.locate with accel paths', () => {
  const cleanup = useCleanup();

  it('names the file only of a stored blob the repository holds, and records the read', async () => {
    const dir = cleanup.add(await makeTempDir('mg-accel-'));
    const s = new FsStorage(dir.path, new ManualClock(), { accelPrefix: PREFIX });
    await s.prepare();
    const reads: string[] = [];
    const access: AccessRecorder = { blobRead: (d) => reads.push(d), manifestRead: () => {}, tagRead: () => {}, stored: () => {} };
    const blobs = new LocalBlobStore(s, access);
    const bytes = Buffer.from('held by one repository');
    const digest = await putContent(s.blobs, bytes);
    expect(blobs.redirects).toBe(true);
    expect(await blobs.locate(repo, digest)).toBeUndefined();
    await blobs.hold(repo, digest);
    expect(await blobs.locate(repo, digest)).toEqual({ accelPath: `${PREFIX}sha256/${digest.slice(7, 9)}/${digest.slice(7)}` });
    expect(await blobs.locate(other, digest)).toBeUndefined();
    expect(reads).toEqual([digest]);
    // Held, but its file gone (evicted): streamed by `open`, which finds nothing either.
    await s.metadata.link(other, 'blob', sha256(Buffer.from('never stored')));
    expect(await blobs.locate(other, sha256(Buffer.from('never stored')))).toBeUndefined();
  });

  it('makes no lookups when the storage names no places', async () => {
    const dir = cleanup.add(await makeTempDir('mg-accel-'));
    const s = new FsStorage(dir.path, new ManualClock());
    await s.prepare();
    const blobs = new LocalBlobStore(s);
    const digest = await putContent(s.blobs, Buffer.from('streamed'));
    await blobs.hold(repo, digest);
    expect(blobs.redirects).toBe(false);
    expect(await blobs.locate(repo, digest)).toBeUndefined();
  });
});
