import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/common/clock.js';
import { FsMetadataStore } from '../../../src/mirror/store/fs/fs-metadata-store.js';
import { StorageLayout } from '../../../src/mirror/store/fs/layout.js';
import { S3Claims } from '../../../src/mirror/store/s3/s3-claims.js';
import { createS3Client } from '../../../src/mirror/store/s3/s3-client.js';
import { S3Keys } from '../../../src/mirror/store/s3/s3-keys.js';
import { S3Objects } from '../../../src/mirror/store/s3/s3-objects.js';
import { S3Storage } from '../../../src/mirror/store/s3/s3-storage.js';
import { startCephRgw, type CephRgw } from '../../helpers/ceph-rgw.js';
import { createBucket, emptyPrefix, listKeys, rgwClient, rgwConfig } from '../../helpers/s3-bucket.js';
import { expectCode, putContent, readAll, sha256 } from '../../helpers/storage-contract.js';
import { testCa, writeServingCert } from '../../helpers/test-certs.js';
import { makeTempDir, useCleanup, type TempDir } from '../../helpers/tmp.js';

const BUCKET = 'storage';
const MiB = 1024 * 1024;
const ca = testCa('mirrorgate test object store CA');
let certs: TempDir;
let rgw: CephRgw;
let s3: S3Client;
let prefixes = 0;

beforeAll(async () => {
  certs = await makeTempDir('mirrorgate-rgw-tls-');
  const serving = await writeServingCert(certs.path, ca);
  rgw = await startCephRgw({ tls: serving });
  s3 = rgwClient(rgw);
  await createBucket(s3, BUCKET);
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  await rgw?.stop();
  await certs?.cleanup();
});

describe('S3Storage on Ceph RGW', () => {
  const cleanup = useCleanup();

  /** A storage on a prefix of its own, with the filesystem metadata store in a temp dir. */
  async function storage(opts: { client?: S3Client; bucket?: string; staleWriteAgeMs?: number; prefix?: string; metadataDir?: string; redirectTtlMs?: number } = {}) {
    const prefix = opts.prefix ?? `p${++prefixes}/`;
    const dir = opts.metadataDir ?? cleanup.add(await makeTempDir('mirrorgate-s3-metadata-')).path;
    const st = new S3Storage(opts.client ?? s3, new FsMetadataStore(new StorageLayout(dir), systemClock), {
      location: { bucket: opts.bucket ?? BUCKET, prefix },
      endpoint: rgw.endpoint,
      partSize: 5 * MiB,
      staleWriteAgeMs: opts.staleWriteAgeMs ?? 3_600_000,
      ...(opts.redirectTtlMs === undefined ? {} : { redirectTtlMs: opts.redirectTtlMs }),
    });
    cleanup.add(() => emptyPrefix(s3, BUCKET, prefix));
    return { storage: st, prefix, dir };
  }

  function client(extra: Record<string, unknown>): S3Client {
    const c = rgwClient(rgw, extra);
    cleanup.add(() => c.destroy());
    return c;
  }

  it('prepares a usable bucket: no free-space figure, a description, nothing left by the probe', async () => {
    const { storage: st, prefix } = await storage();
    expect(await st.prepare()).toEqual({ swept: 0 });
    expect(await st.freeSpace()).toBeUndefined();
    expect(st.description).toBe(`s3://${BUCKET}/${prefix} at ${rgw.endpoint}`);
    expect(await listKeys(s3, BUCKET, prefix)).toEqual([]);
  });

  it('sweeps at start-up the writes nobody wrote to for a while, but not young ones or those of upload sessions', async () => {
    const first = await storage({ staleWriteAgeMs: 1000 });
    const part = Buffer.alloc(5 * MiB + 1, 7);
    const digest = sha256(Buffer.from('never finished'));
    const old = await first.storage.blobs.writer(digest);
    await old.append([part]);
    const session = await first.storage.blobs.writer(digest);
    await session.append([part]);
    await first.storage.metadata.putUpload({ id: 'u1', repo: { upstream: 'docker.io', path: 'library/x' }, writeId: session.id, offset: part.length, startedAt: 0, updatedAt: 0 });
    // Ages are measured on the store's clock, known to the second (its Date header): margins of a second.
    await sleep(2500);
    const young = await first.storage.manifests.writer(digest);
    await young.append([part]);

    // A restart: a new process sees only what is stored (5 MiB of each write), not this one's buffers.
    const restarted = await storage({ staleWriteAgeMs: 1000, prefix: first.prefix, metadataDir: first.dir });
    expect(await restarted.storage.prepare()).toEqual({ swept: 1 });
    expect((await restarted.storage.blobs.listWrites()).map((w) => w.id)).toEqual([session.id]);
    expect((await restarted.storage.manifests.listWrites()).map((w) => [w.id, w.size])).toEqual([[young.id, 5 * MiB]]);
    for (const w of [old, session, young]) await w.cancel();
  });

  it('gives a presigned URL for a blob when redirects are configured, none otherwise', async () => {
    const { storage: streamed, prefix } = await storage();
    const bytes = Buffer.from('served from the store');
    const digest = await putContent(streamed.blobs, bytes);
    expect(streamed.blobRedirectUrl).toBeUndefined();
    const { storage: redirecting } = await storage({ prefix, redirectTtlMs: 5 * 60_000 });
    const url = (await redirecting.blobRedirectUrl!(digest))!;
    expect(url).toContain('X-Amz-Expires=300');
    const res = await request(url);
    expect(res.statusCode).toBe(200);
    expect(Buffer.from(await res.body.arrayBuffer()).equals(bytes)).toBe(true);
  });

  describe('start-up errors: one clear message each', () => {
    it('a bucket that does not exist', async () => {
      const { storage: st } = await storage({ bucket: 'no-such-bucket' });
      const err = await expectCode(st.prepare(), 'CONFIG_INVALID');
      expect(err.message).toMatch(/^object storage s3:\/\/no-such-bucket\/p\d+\/ at http:\/\/127\.0\.0\.1:\d+: bucket does not exist: create it, or fix mirror\.storage\.s3\.bucket$/);
    });

    it('a wrong secret key', async () => {
      const { storage: st } = await storage({ client: client({ secretAccessKey: { value: 'not-the-secret' } }) });
      const err = await expectCode(st.prepare(), 'CONFIG_INVALID');
      expect(err.message).toMatch(/the secret key does not match the access key: check mirror\.storage\.s3\.secretAccessKey/);
    });

    it('an access key the store does not know', async () => {
      const { storage: st } = await storage({ client: client({ accessKeyId: { value: 'AKNOBODY' } }) });
      const err = await expectCode(st.prepare(), 'CONFIG_INVALID');
      expect(err.message).toMatch(/the access key is not known to the object store/);
    });

    it('credentials without access to the bucket', async () => {
      const other = await rgw.createUser('stranger');
      const { storage: st } = await storage({ client: client({ accessKeyId: { value: other.accessKeyId }, secretAccessKey: { value: other.secretAccessKey } }) });
      const err = await expectCode(st.prepare(), 'CONFIG_INVALID');
      expect(err.message).toMatch(/access denied: the credentials need list, read, write and delete on the bucket/);
    });

    it('a clock an hour off: refused with its own message; the SDK takes the offset from the answer, and the next start goes on', async () => {
      // The SDK's offset is skewed here, not the machine's clock: seen from the answer's Date there is no
      // skew left to correct, so the SDK does not retry at once as it does for a machine whose clock is off.
      const skewed = client({});
      skewed.config.systemClockOffset = 3_600_000;
      const { storage: st } = await storage({ client: skewed });
      const err = await expectCode(st.prepare(), 'CONFIG_INVALID');
      expect(err.message).toMatch(/this machine's clock is too far from the object store's \(more than 15 minutes\): fix the clock \(NTP\)$/);
      expect(Math.abs(skewed.config.systemClockOffset)).toBeLessThan(60_000);
      expect(await st.prepare()).toEqual({ swept: 0 });
    });

    it('an endpoint nobody answers on', async () => {
      const { storage: st } = await storage({ client: client({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1 }) });
      const err = await expectCode(st.prepare(), 'CONFIG_INVALID');
      expect(err.message).toMatch(/cannot reach the object store: .*ECONNREFUSED/);
    });
  });

  describe('TLS with a custom CA', () => {
    it('trusts the endpoint with caFile, and refuses it without', async () => {
      const caFile = path.join(certs.path, 'ca.pem');
      await writeFile(caFile, ca.cert);
      const trusted = createS3Client(rgwConfig(rgw, BUCKET, { endpoint: rgw.tlsEndpoint, caFile }), {});
      cleanup.add(() => trusted.destroy());
      const { storage: st } = await storage({ client: trusted });
      await st.prepare();
      const bytes = Buffer.from('over TLS');
      const digest = await putContent(st.blobs, bytes);
      expect((await readAll(await st.blobs.open(digest))).equals(bytes)).toBe(true);

      const untrusted = client({ endpoint: rgw.tlsEndpoint, maxAttempts: 1 });
      const refused = await storage({ client: untrusted });
      const err = await expectCode(refused.storage.prepare(), 'CONFIG_INVALID');
      expect(err.message).toMatch(/cannot reach the object store: .*(self[- ]signed|unable to verify|issuer)/i);
    });
  });

  describe('claims', () => {
    it('mirrors share the bucket; gc conflicts with a live mirror and a mirror with a live gc (unless forced)', async () => {
      const { storage: a, prefix, dir } = await storage();
      const { storage: b } = await storage({ prefix, metadataDir: dir });
      expect(await a.holder()).toBeUndefined();
      const m1 = await a.claim('mirror');
      const m2 = await b.claim('mirror');
      const holder = await a.holder();
      expect(holder).toMatchObject({ owner: 'mirror', pid: process.pid, hostname: hostname() });
      const refused = await expectCode(b.claim('gc'), 'STORAGE_LOCKED');
      expect(refused.message).toMatch(new RegExp(`in use by a running mirror \\(pid ${process.pid} on `));
      // The refused claim left nothing behind.
      expect((await listKeys(s3, BUCKET, `${prefix}state/claims/`)).length).toBe(2);

      await m1.release();
      await m2.heartbeat();
      await expectCode(a.claim('gc'), 'STORAGE_LOCKED');
      await m2.release();
      expect(await a.holder()).toBeUndefined();

      const gc = await a.claim('gc');
      expect((await b.holder())?.owner).toBe('gc');
      const mirrorRefused = await expectCode(b.claim('mirror'), 'STORAGE_LOCKED');
      expect(mirrorRefused.message).toMatch(/in use by mirrorgate gc/);
      await expectCode(b.claim('gc'), 'STORAGE_LOCKED');
      const forced = await b.claim('mirror', { force: true });
      await forced.release();
      await gc.release();
      expect(await listKeys(s3, BUCKET, `${prefix}state/claims/`)).toEqual([]);
    });

    it('a claim not rewritten for two minutes (its holder died) is not a holder any more', async () => {
      const { storage: st, prefix } = await storage();
      const claim = await st.claim('mirror');
      const objects = new S3Objects(s3, BUCKET);
      const keys = new S3Keys({ bucket: BUCKET, prefix });
      expect(await new S3Claims(objects, keys, () => Date.now() + 60_000).holder()).toBeDefined();
      expect(await new S3Claims(objects, keys, () => Date.now() + 121_000).holder()).toBeUndefined();
      await claim.release();
    });
  });
});
