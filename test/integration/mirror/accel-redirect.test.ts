import bcrypt from 'bcryptjs';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { generateBytes, MediaTypes, pushBlob, pushImage, sha256, type BlobRef, type PushedImage } from '../../helpers/images.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { startAccelFront, type AccelFront } from '../../helpers/nginx-accel.js';
import { readDirImage, skopeoCopy } from '../../helpers/skopeo.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/http.js';

/**
 * `storage.accelRedirect` with Debian's nginx in front, configured as docs/deploy.md says: the mirror
 * authenticates, scopes and checks every request, and names the file of a stored blob; nginx sends it
 * (sendfile), Range included. Everything else, cold blobs among it, the mirror serves itself.
 */
const PREFIX = '/_mirrorgate/blobs/';
const PASSWORD = 'accel-Secret-9';
const cleanup = new Cleanup();
let hub: HubFront;
let mirror: TestMirror;
let front: AccelFront;
let image: PushedImage;
let cold: BlobRef;
let coldBytes: Buffer;
let elsewhere: BlobRef;
const auth = `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`;

async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(url, { method, headers: { authorization: auth, ...headers } });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, code: () => (JSON.parse(body.toString()) as { errors: { code: string }[] }).errors[0]!.code };
}

/** nginx's static module sends Last-Modified (the file's); the mirror never does: who sent the bytes. */
const sentByNginx = (headers: Record<string, unknown>): boolean => headers['last-modified'] !== undefined;

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  image = await pushImage(registry.url, 'library/app', 'v1', { layers: [300_000, 5000], format: 'oci', seed: 'accel' });
  coldBytes = generateBytes('accel-cold', 2_000_000);
  cold = await pushBlob(registry.url, 'library/app', coldBytes);
  elsewhere = await pushBlob(registry.url, 'library/other', generateBytes('accel-elsewhere', 10_000));
  hub = cleanup.add(await startHubFront({ target: registry.url }));
  const dir = cleanup.add(await makeTempDir('mirrorgate-accel-'));
  const htpasswd = join(dir.path, 'htpasswd');
  writeFileSync(htpasswd, `alice:${bcrypt.hashSync(PASSWORD, 4)}\n`);
  const storage = cleanup.add(await makeTempDir('mirrorgate-accel-storage-'));
  mirror = cleanup.add(
    await startMirror({
      upstreams: { 'docker.io': hub.url },
      storage,
      config: { mirror: { storage: { path: storage.path, accelRedirect: { prefix: PREFIX } }, auth: { htpasswd } } },
    }),
  );
  front = cleanup.add(await startAccelFront({ mirror: mirror.url, storagePath: storage.path, prefix: PREFIX }));
  // The image's manifest and blobs cached through the mirror itself.
  const accept = [MediaTypes.ociManifest, MediaTypes.dockerManifest].join(', ');
  expect((await get(`${mirror.url}/v2/library/app/manifests/v1`, { accept })).status).toBe(200);
  for (const b of [image.config, ...image.layers]) expect((await get(`${mirror.url}/v2/library/app/blobs/${b.digest}`)).status).toBe(200);
  // The cache write commits just after the last byte went to the client.
  for (const b of [image.config, ...image.layers]) await stored(b.digest);
}, 120_000);

/** Waits until the blob's file is in the storage (the mirror then names it). */
async function stored(digest: string): Promise<void> {
  const file = join(mirror.storage.path, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7));
  await waitFor(() => existsSync(file), 10_000, `${digest} stored`);
}

afterAll(() => cleanup.run());

describe('the mirror with storage.accelRedirect', () => {
  it('answers a GET of a stored blob with X-Accel-Redirect and no body when the front asks, and a HEAD itself', async () => {
    const layer = image.layers[0]!;
    const r = await get(`${mirror.url}/v2/library/app/blobs/${layer.digest}`, { 'x-mirrorgate-accel': 'on' });
    expect(r.status).toBe(200);
    expect(r.headers['x-accel-redirect']).toBe(`${PREFIX}sha256/${layer.digest.slice(7, 9)}/${layer.digest.slice(7)}`);
    expect(r.headers['docker-content-digest']).toBe(layer.digest);
    expect(r.headers['content-length']).toBe('0');
    expect(r.body.length).toBe(0);
    const head = await get(`${mirror.url}/v2/library/app/blobs/${layer.digest}`, {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['x-accel-redirect']).toBeUndefined();
    expect(head.headers['content-length']).toBe(String(layer.size));
  });

  it('sends the bytes itself to a client that reaches it without the front', async () => {
    const layer = image.layers[0]!;
    const r = await get(`${mirror.url}/v2/library/app/blobs/${layer.digest}`);
    expect(r.status).toBe(200);
    expect(r.headers['x-accel-redirect']).toBeUndefined();
    expect(sha256(r.body)).toBe(layer.digest);
  });
});

describe('nginx in front of the mirror (X-Accel-Redirect)', () => {
  it('sends a warm blob from the file, with the registry headers', async () => {
    const layer = image.layers[0]!;
    hub.reset();
    const r = await get(`${front.url}/v2/library/app/blobs/${layer.digest}`);
    expect(r.status).toBe(200);
    expect(sha256(r.body)).toBe(layer.digest);
    expect(sentByNginx(r.headers)).toBe(true);
    expect(r.headers).toMatchObject({
      'content-length': String(layer.size),
      'content-type': 'application/octet-stream',
      'docker-content-digest': layer.digest,
      'docker-distribution-api-version': 'registry/2.0',
      etag: `"${layer.digest}"`,
      'accept-ranges': 'bytes',
    });
    expect(r.headers['x-accel-redirect']).toBeUndefined();
    expect(hub.requests).toEqual([]);
  });

  it('serves a Range of a warm blob (206, the right bytes)', async () => {
    const layer = image.layers[0]!;
    const whole = (await get(`${front.url}/v2/library/app/blobs/${layer.digest}`)).body;
    const r = await get(`${front.url}/v2/library/app/blobs/${layer.digest}`, { range: 'bytes=1000-65535' });
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe(`bytes 1000-65535/${layer.size}`);
    expect(r.headers['docker-content-digest']).toBe(layer.digest);
    expect(r.body.equals(whole.subarray(1000, 65536))).toBe(true);
    const tail = await get(`${front.url}/v2/library/app/blobs/${layer.digest}`, { range: 'bytes=-10' });
    expect(tail.status).toBe(206);
    expect(tail.body.equals(whole.subarray(-10))).toBe(true);
    // Several ranges: the whole blob, as the mirror answers them (`max_ranges 1`).
    const several = await get(`${front.url}/v2/library/app/blobs/${layer.digest}`, { range: 'bytes=0-9,20-29' });
    expect(several.status).toBe(200);
    expect(sha256(several.body)).toBe(layer.digest);
    const beyond = await get(`${front.url}/v2/library/app/blobs/${layer.digest}`, { range: `bytes=${layer.size}-` });
    expect(beyond.status).toBe(416);
    expect(beyond.headers['content-range']).toBe(`bytes */${layer.size}`);
  });

  it('streams a cold blob from the mirror, to a client that joins the download in flight too, then sends it from the file', async () => {
    // The upstream stalls after its headers, so the second client arrives while the download is under way.
    hub.faults.push({ match: { kind: 'blob', method: 'GET', pathIncludes: cold.digest }, action: { type: 'stall', ms: 500 } });
    const url = `${front.url}/v2/library/app/blobs/${cold.digest}`;
    const first = get(url);
    await new Promise((r) => setTimeout(r, 200));
    const [a, b] = await Promise.all([first, get(url)]);
    for (const r of [a, b]) {
      expect(r.status).toBe(200);
      expect(sha256(r.body)).toBe(cold.digest);
      expect(r.headers['docker-content-digest']).toBe(cold.digest);
      expect(sentByNginx(r.headers)).toBe(false);
    }
    expect(hub.count({ kind: 'blob', method: 'GET', pathIncludes: cold.digest })).toBe(1);
    await stored(cold.digest);
    const warm = await get(url);
    expect(sha256(warm.body)).toBe(cold.digest);
    expect(sentByNginx(warm.headers)).toBe(true);
  });

  it('answers BLOB_UNKNOWN from the mirror, no bytes, for a stored blob the repository does not hold', async () => {
    // Stored for library/other; library/app's upstream does not have it.
    expect((await get(`${front.url}/v2/library/other/blobs/${elsewhere.digest}`)).status).toBe(200);
    await stored(elsewhere.digest);
    const r = await get(`${front.url}/v2/library/app/blobs/${elsewhere.digest}`);
    expect(r.status).toBe(404);
    expect(r.code()).toBe('BLOB_UNKNOWN');
    expect(r.headers['x-accel-redirect']).toBeUndefined();
    expect(r.body.includes(generateBytes('accel-elsewhere', 10_000).subarray(0, 64))).toBe(false);
  });

  it('sends nothing to a client without credentials (401 from the mirror)', async () => {
    const layer = image.layers[0]!;
    const res = await request(`${front.url}/v2/library/app/blobs/${layer.digest}`);
    const body = Buffer.from(await res.body.arrayBuffer());
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Basic realm=/);
    expect(res.headers['x-accel-redirect']).toBeUndefined();
    expect((JSON.parse(body.toString()) as { errors: { code: string }[] }).errors[0]!.code).toBe('UNAUTHORIZED');
  });

  it('refuses the internal prefix to clients (404 from nginx, whatever the credentials)', async () => {
    const layer = image.layers[0]!;
    for (const path of [`${PREFIX}sha256/${layer.digest.slice(7, 9)}/${layer.digest.slice(7)}`, PREFIX, `${PREFIX}../state/lock`]) {
      const r = await get(`${front.url}${path}`);
      expect(r.status, path).toBe(404);
      expect(r.body.length).toBeLessThan(1000);
      expect(r.headers['docker-content-digest']).toBeUndefined();
    }
  });

  it('serves manifests from the mirror itself', async () => {
    const r = await get(`${front.url}/v2/library/app/manifests/v1`, { accept: MediaTypes.ociManifest });
    expect(r.status).toBe(200);
    expect(r.body.equals(image.manifestBytes)).toBe(true);
    expect(r.headers['docker-content-digest']).toBe(image.digest);
    expect(sentByNginx(r.headers)).toBe(false);
  });

  it('gives skopeo the whole image through nginx', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-accel-skopeo-'));
    const host = front.url.replace('http://', '');
    await skopeoCopy(`docker://${host}/library/app:v1`, `dir:${dir.path}`, { srcCreds: `alice:${PASSWORD}`, throwOnError: true });
    const pulled = await readDirImage(dir.path);
    expect(pulled.manifestDigest).toBe(image.digest);
    expect(pulled.blobs.sort()).toEqual([image.config, ...image.layers].map((b) => b.digest).sort());
  });
});
