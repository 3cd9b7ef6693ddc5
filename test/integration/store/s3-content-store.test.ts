import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CreateMultipartUploadCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ContentStore } from '../../../src/mirror/store/s3/s3-content-store.js';
import { S3Keys, type ContentKind } from '../../../src/mirror/store/s3/s3-keys.js';
import { S3Objects } from '../../../src/mirror/store/s3/s3-objects.js';
import { startCephRgw, type CephRgw } from '../../helpers/ceph-rgw.js';
import { generateBytes } from '../../helpers/images.js';
import { createBucket, emptyPrefix, listKeys, listUploads, rgwClient } from '../../helpers/s3-bucket.js';
import { startS3FaultProxy } from '../../helpers/s3-fault-proxy.js';
import { describeContentStoreContract, expectCode, putContent, readAll, sha256 } from '../../helpers/storage-contract.js';
import { useCleanup } from '../../helpers/tmp.js';

const helpers = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'helpers');
const root = path.resolve(helpers, '..', '..');

const BUCKET = 'contract';
const MiB = 1024 * 1024;
let rgw: CephRgw;
let s3: S3Client;
let stores = 0;

beforeAll(async () => {
  rgw = await startCephRgw();
  s3 = rgwClient(rgw);
  await createBucket(s3, BUCKET);
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  await rgw?.stop();
});

/** A store under a prefix of its own, emptied after the test. */
function storeHarness(kind: ContentKind) {
  return async () => {
    const prefix = `t${++stores}/`;
    const store = new S3ContentStore(new S3Objects(s3, BUCKET), new S3Keys({ bucket: BUCKET, prefix }), kind, { partSize: 8 * MiB });
    return { store, cleanup: () => emptyPrefix(s3, BUCKET, prefix) };
  };
}

describeContentStoreContract('S3ContentStore on Ceph RGW (blobs)', storeHarness('blobs'));
describeContentStoreContract('S3ContentStore on Ceph RGW (manifests)', storeHarness('manifests'));

/** A store on its own prefix with 5 MiB parts (S3's smallest), and what it left in the bucket. */
function smallPartStore(client = s3) {
  const prefix = `s${++stores}/`;
  const store = new S3ContentStore(new S3Objects(client, BUCKET), new S3Keys({ bucket: BUCKET, prefix }), 'blobs', { partSize: 5 * MiB });
  return {
    store,
    prefix,
    keys: (under: string) => listKeys(s3, BUCKET, `${prefix}${under}`),
    uploads: () => listUploads(s3, BUCKET, prefix),
  };
}

describe('S3ContentStore on Ceph RGW: parts, resumes and sweeps', () => {
  const cleanup = useCleanup();

  it('stores a large write as parts under uploads/ while it runs, reads them back, and composes them at commit', async () => {
    const { store, keys, uploads } = smallPartStore();
    const size = 17 * MiB + 123;
    const bytes = generateBytes('parts', size);
    const digest = sha256(bytes);
    const w = await store.writer(digest);
    const reader = await w.openReader();
    for (let at = 0; at < size; at += 3 * MiB) await w.append([bytes.subarray(at, Math.min(size, at + 3 * MiB))]);
    // Three full parts stored, the rest in memory; nothing under blobs/ yet.
    expect((await keys('uploads/')).map((k) => k.slice(k.lastIndexOf('/') + 1))).toEqual(['000000000000000', '000000005242880', '000000010485760']);
    expect(await keys('blobs/')).toEqual([]);
    expect(await store.stat(digest)).toBeUndefined();
    // Reads across the stored parts and the buffered tail.
    for (const [start, length] of [[0, 10], [5 * MiB - 5, 10], [10 * MiB - 1, 5 * MiB + 2], [15 * MiB + 7, 2 * MiB], [size - 50, 50]] as const) {
      expect((await reader.read(start, length)).equals(bytes.subarray(start, start + length))).toBe(true);
    }
    await w.commit({ digest, size });
    expect(await keys('blobs/')).toHaveLength(1);
    expect((await readAll(await store.open(digest))).equals(bytes)).toBe(true);
    expect((await reader.read(size - 10, 10)).equals(bytes.subarray(size - 10))).toBe(true);
    await reader.close();
    expect(await keys('uploads/')).toEqual([]);
    expect(await uploads()).toEqual([]);
    const ranged = await store.open(digest, { start: 5 * MiB - 3, end: 5 * MiB + 2 });
    expect((await readAll(ranged)).equals(bytes.subarray(5 * MiB - 3, 5 * MiB + 3))).toBe(true);
  });

  it('a writer process killed mid-write leaves nothing visible; the write is listed, resumed from its stored parts, and verified whole', async () => {
    const { store, prefix, keys } = smallPartStore();
    const size = 12 * MiB;
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(helpers, 's3-cut-writer.ts'), JSON.stringify({ endpoint: rgw.endpoint, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey, bucket: BUCKET, prefix, partSize: 5 * MiB, seed: 'cut', bytes: size })], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    cleanup.add(() => void (child.exitCode === null && child.kill('SIGKILL')));
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 30_000;
    while (!out.includes('\n') && child.exitCode === null && Date.now() < deadline) await sleep(50);
    const { id, written } = JSON.parse(out.split('\n')[0]!) as { id: string; written: number };
    expect(written).toBe(size);
    child.kill('SIGKILL');
    await once(child, 'exit');

    // Killed: the 2 MiB it held in memory are lost, the two stored parts are not; nothing is under blobs/.
    const full = generateBytes('cut', 2 * size);
    const digest = sha256(full);
    expect(await keys('blobs/')).toEqual([]);
    expect(await store.stat(digest)).toBeUndefined();
    expect(await store.list()).toEqual([]);
    const pending = await store.listWrites();
    expect(pending.map((p) => [p.id, p.size])).toEqual([[id, 10 * MiB]]);

    const w = (await store.resume(id, digest))!;
    expect(w.written).toBe(10 * MiB);
    await w.append([full.subarray(10 * MiB)]);
    await w.commit({ digest, size: full.length });
    expect((await readAll(await store.open(digest))).equals(full)).toBe(true);
    expect(await store.listWrites()).toEqual([]);
    expect(await keys('uploads/')).toEqual([]);
  });

  it('lists the multipart upload of a commit that died and the parts of an abandoned write, and sweeps both', async () => {
    const { store, prefix, keys, uploads } = smallPartStore();
    // A commit cut between CreateMultipartUpload and Complete: one part uploaded.
    const digest = sha256(Buffer.from('never completed'));
    const key = `${prefix}blobs/sha256/${digest.slice(7)}`;
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: Buffer.alloc(1000, 1), ContentLength: 1000 }));
    // A write whose process died after storing a part.
    const dead = await store.writer(digest);
    await dead.append([Buffer.alloc(5 * MiB + 1, 2)]);
    const other = new S3ContentStore(new S3Objects(s3, BUCKET), new S3Keys({ bucket: BUCKET, prefix }), 'blobs', { partSize: 5 * MiB });

    const listed = await other.listWrites();
    expect(listed.map((p) => p.size).sort((a, b) => a - b)).toEqual([1000, 5 * MiB]);
    const mpu = listed.find((p) => p.size === 1000)!;
    expect(mpu.id).toMatch(/^blobs-mpu-sha256-[0-9a-f]{64}-[A-Za-z0-9_-]+$/);
    expect(listed.find((p) => p.size === 5 * MiB)!.id).toBe(dead.id);
    for (const p of listed) expect(Math.abs(p.modifiedAt - Date.now())).toBeLessThan(60_000);
    expect(await other.resume(mpu.id, digest)).toBeUndefined();

    for (const p of listed) await other.deleteWrite(p.id);
    expect(await uploads()).toEqual([]);
    expect(await keys('')).toEqual([]);
    expect(await other.listWrites()).toEqual([]);
    await dead.cancel();
  });

  it('retries 503 SlowDown with backoff; every PUT carries Content-MD5 and an unsigned payload', async () => {
    const proxy = cleanup.add(await startS3FaultProxy(rgw.endpoint));
    const client = rgwClient(rgw, { endpoint: proxy.url });
    cleanup.add(() => client.destroy());
    const { store } = smallPartStore(client);
    const bytes = generateBytes('slow', 6 * MiB);
    const digest = sha256(bytes);
    proxy.slowDown({ method: 'PUT', pathIncludes: '/uploads/' }, { retryAfterSeconds: 1 });
    proxy.slowDown({ method: 'PUT', pathIncludes: '/uploads/' });
    proxy.slowDown({ method: 'GET', pathIncludes: '/blobs/' });
    const w = await store.writer(digest);
    await w.append([bytes]);
    await w.commit({ digest, size: bytes.length });
    expect((await readAll(await store.open(digest))).equals(bytes)).toBe(true);

    const parts = proxy.requests.filter((r) => r.method === 'PUT' && r.path.includes('/uploads/'));
    expect(parts.map((r) => r.status)).toEqual([503, 503, 200]);
    // The first answer asked for a second's pause, and got it.
    expect(parts[1]!.at - parts[0]!.at).toBeGreaterThanOrEqual(900);
    for (const r of parts) {
      expect(r.headers['content-md5']).toBe(createHash('md5').update(bytes.subarray(0, 5 * MiB)).digest('base64'));
      expect(r.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    }
    expect(proxy.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).map((r) => r.status)).toEqual([503, 200]);

    // Without retries the same answer is an error the mirror reports as UNAVAILABLE (503).
    const once = rgwClient(rgw, { endpoint: proxy.url, maxAttempts: 1 });
    cleanup.add(() => once.destroy());
    proxy.slowDown({ method: 'HEAD' });
    const err = await expectCode(smallPartStore(once).store.stat(digest), 'UNAVAILABLE');
    expect(err.message).toMatch(/503/);
  });

  it('a reader going through the stored parts in small steps reads each part with one streamed GET', async () => {
    const proxy = cleanup.add(await startS3FaultProxy(rgw.endpoint));
    const client = rgwClient(rgw, { endpoint: proxy.url });
    cleanup.add(() => client.destroy());
    const { store } = smallPartStore(client);
    const bytes = generateBytes('steps', 11 * MiB);
    const digest = sha256(bytes);
    const w = await store.writer(digest);
    await w.append([bytes]);
    const reader = await w.openReader();
    for (let at = 0; at < bytes.length; at += 256 * 1024) {
      const n = Math.min(256 * 1024, bytes.length - at);
      expect((await reader.read(at, n)).equals(bytes.subarray(at, at + n))).toBe(true);
    }
    expect(proxy.requests.filter((r) => r.method === 'GET' && r.path.includes('/uploads/')).map((r) => r.headers.range)).toEqual(['bytes=0-5242879', 'bytes=0-5242879']);
    await reader.close();
    await w.cancel();
  });

  it('presigns GET URLs that serve the item to a plain HTTP client until they expire', async () => {
    const { store } = smallPartStore();
    const bytes = generateBytes('presigned', 300_000);
    const digest = await putContent(store, bytes);
    const url = await store.presignedUrl(digest, 60_000);
    expect(url.startsWith(`${rgw.endpoint}/${BUCKET}/`)).toBe(true);
    expect(url).toContain('X-Amz-Expires=60');
    const res = await request(url);
    expect(res.statusCode).toBe(200);
    expect(Buffer.from(await res.body.arrayBuffer()).equals(bytes)).toBe(true);
    const ranged = await request(url, { headers: { range: 'bytes=10-19' } });
    expect(ranged.statusCode).toBe(206);
    expect(Buffer.from(await ranged.body.arrayBuffer()).equals(bytes.subarray(10, 20))).toBe(true);
    // The signature covers the key: another item's URL cannot be made from it.
    const other = await putContent(store, Buffer.from('other'));
    const forged = await request(url.replace(digest.slice(7), other.slice(7)));
    expect(forged.statusCode).toBe(403);
    await forged.body.dump();

    const short = await store.presignedUrl(digest, 1000);
    await sleep(2100);
    const expired = await request(short);
    expect(expired.statusCode).toBe(403);
    await expired.body.dump();
  });
});
