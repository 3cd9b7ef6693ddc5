import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawConfig } from '../../../src/config/load.js';
import type { S3Storage } from '../../../src/mirror/store/s3/s3-storage.js';
import { startCephRgw, type CephRgw } from '../../helpers/ceph-rgw.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { pushImage, sha256, type PushedImage } from '../../helpers/images.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { createBucket, listKeys, rgwClient } from '../../helpers/s3-bucket.js';
import { readDirImage, skopeoCopy } from '../../helpers/skopeo.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';

const BUCKET = 'mirror';
const cleanup = new Cleanup();
let rgw: CephRgw;
let s3: S3Client;
let hub: HubFront;
let image: PushedImage;

beforeAll(async () => {
  rgw = cleanup.add(await startCephRgw());
  s3 = rgwClient(rgw);
  cleanup.add(() => s3.destroy());
  await createBucket(s3, BUCKET);
  const registry = cleanup.add(await startDockerRegistry());
  // A layer larger than a part (8 MiB): stored in parts while it downloads, composed at the commit.
  image = await pushImage(registry.url, 'library/app', 'v1', { layers: [2048, 300_000, 9 * 1024 * 1024 + 5], format: 'oci', seed: 's3-mirror' });
  hub = cleanup.add(await startHubFront({ target: registry.url }));
}, 120_000);

afterAll(() => cleanup.run());

/** A mirror whose content is in the bucket, with its metadata in a fresh directory of its own. */
async function s3Mirror(extra: Record<string, unknown> = {}): Promise<TestMirror> {
  const metadata = cleanup.add(await makeTempDir('mirrorgate-s3-metadata-'));
  const s3Config = {
    endpoint: rgw.endpoint,
    region: rgw.region,
    bucket: BUCKET,
    prefix: 'cache',
    forcePathStyle: true,
    accessKeyId: { value: rgw.accessKeyId },
    secretAccessKey: { value: rgw.secretAccessKey },
    ...extra,
  };
  const mirror = await startMirror({
    upstreams: { 'docker.io': hub.url },
    storage: metadata,
    config: { mirror: { storage: { path: metadata.path, s3: s3Config } } as RawConfig },
  });
  cleanup.add(async () => {
    await mirror.stop();
    (mirror.server.storage as S3Storage).close();
  });
  return mirror;
}

async function pull(mirror: TestMirror, ref: string) {
  const out = cleanup.add(await makeTempDir('mirrorgate-pull-'));
  await skopeoCopy(`docker://${mirror.host}/${ref}`, `dir:${out.path}`, { throwOnError: true });
  return readDirImage(out.path);
}

describe('a mirror on Ceph RGW', () => {
  it('pulls an image into the bucket; a second mirror on the same bucket serves it warm, by digest and by tag, with no upstream GET', async () => {
    const cold = await s3Mirror();
    expect(cold.server.storage.description).toBe(`s3://${BUCKET}/cache/ at ${rgw.endpoint}`);
    hub.reset();
    const first = await pull(cold, 'library/app:v1');
    expect(first.manifestDigest).toBe(image.digest);
    const blobs = [image.config.digest, ...image.layers.map((l) => l.digest)];
    expect(first.blobs.sort()).toEqual([...blobs].sort());
    expect(hub.count({ kind: 'blob', method: 'GET' })).toBe(4);

    // Everything is in the bucket, verified and composed; nothing is left in progress. (The client has its
    // last byte once the blob is verified, a moment before the commit makes it visible.)
    const key = (d: string) => d.replace(':', '/');
    const want = blobs.map((d) => `cache/blobs/${key(d)}`).sort();
    for (const until = Date.now() + 10_000; (await listKeys(s3, BUCKET, 'cache/blobs/')).length < want.length && Date.now() < until; ) await sleep(50);
    expect(await listKeys(s3, BUCKET, 'cache/blobs/')).toEqual(want);
    expect(await listKeys(s3, BUCKET, 'cache/manifests/')).toEqual([`cache/manifests/${key(image.digest)}`]);
    expect(await listKeys(s3, BUCKET, 'cache/uploads/')).toEqual([]);
    await cold.stop();

    // Another replica, the same bucket: tags, links and content are all there. No byte and no tag comes from
    // the upstream again.
    const warm = await s3Mirror();
    hub.reset();
    const second = await pull(warm, `library/app@${image.digest}`);
    expect(second.manifestDigest).toBe(image.digest);
    expect(second.blobs.sort()).toEqual([...blobs].sort());
    const byTag = await pull(warm, 'library/app:v1');
    expect(byTag.manifestDigest).toBe(image.digest);
    expect(hub.count({ kind: 'blob', method: 'GET' })).toBe(0);
    expect(hub.count({ kind: 'blob', method: 'HEAD' })).toBe(0);
    expect(hub.count({ kind: 'manifest', method: 'GET' })).toBe(0);
  }, 120_000);
});

/** Body bytes the mirror sent for blobs so far. */
async function blobBytesServed(mirror: TestMirror): Promise<number> {
  const metric = await mirror.server.metrics.registry.getSingleMetric('mirrorgate_bytes_served_total')!.get();
  return metric.values.filter((v) => v.labels.kind === 'blob').reduce((n, v) => n + v.value, 0);
}

describe('a mirror on Ceph RGW with redirect on', () => {
  it('answers warm blob GETs with 307 to a presigned URL that skopeo follows; cold blobs stream; HEADs and blobs not held are answered by the mirror', async () => {
    const mirror = await s3Mirror({ prefix: 'redirect', redirect: true, redirectTtl: '2m' });
    const layer = image.layers[2]!;
    // Cold: nothing stored yet, so the download streams through the mirror (and into the bucket).
    const cold = await request(`${mirror.url}/v2/library/app/blobs/${layer.digest}`);
    expect(cold.statusCode).toBe(200);
    expect(sha256(Buffer.from(await cold.body.arrayBuffer()))).toBe(layer.digest);
    expect(await blobBytesServed(mirror)).toBe(layer.size);

    // A whole image by skopeo, which follows the redirects: the bytes come from the gateway, not the mirror.
    await pull(mirror, 'library/app:v1'); // the config and the small layers stream once, cold
    const served = await blobBytesServed(mirror);
    hub.reset();
    const warm = await pull(mirror, 'library/app:v1');
    expect(warm.manifestDigest).toBe(image.digest);
    expect(warm.blobs.sort()).toEqual([image.config.digest, ...image.layers.map((l) => l.digest)].sort());
    expect(await blobBytesServed(mirror)).toBe(served);
    expect(hub.count({ kind: 'blob', method: 'GET' })).toBe(0);

    // A raw client: the 307 names the object on the gateway, signed for a GET of that one key.
    const res = await request(`${mirror.url}/v2/library/app/blobs/${layer.digest}`, { headers: { range: 'bytes=0-99' } });
    expect(res.statusCode).toBe(307);
    await res.body.dump();
    expect(res.headers['docker-content-digest']).toBe(layer.digest);
    const location = new URL(String(res.headers.location));
    expect(location.origin).toBe(rgw.endpoint);
    expect(location.pathname).toBe(`/${BUCKET}/redirect/blobs/${layer.digest.replace(':', '/')}`);
    expect(location.searchParams.get('X-Amz-Expires')).toBe('120');
    const whole = await request(location);
    expect(whole.statusCode).toBe(200);
    expect(sha256(Buffer.from(await whole.body.arrayBuffer()))).toBe(layer.digest);
    const ranged = await request(location, { headers: { range: 'bytes=0-99' } });
    expect(ranged.statusCode).toBe(206);
    expect((await ranged.body.arrayBuffer()).byteLength).toBe(100);
    // The signature covers the key: another key with it is refused.
    const other = new URL(location);
    other.pathname = `/${BUCKET}/redirect/manifests/${image.digest.replace(':', '/')}`;
    const refused = await request(other);
    await refused.body.dump();
    expect(refused.statusCode).toBe(403);

    // HEAD is answered by the mirror (a presigned URL is for GETs).
    const head = await request(`${mirror.url}/v2/library/app/blobs/${layer.digest}`, { method: 'HEAD' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe(String(layer.size));
    // Stored, but not held by a repository whose upstream does not have it: no URL, the usual 404.
    const notHeld = await request(`${mirror.url}/v2/library/other/blobs/${layer.digest}`);
    expect(notHeld.statusCode).toBe(404);
    expect(((await notHeld.body.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('BLOB_UNKNOWN');
    await mirror.stop();
  }, 120_000);
});
