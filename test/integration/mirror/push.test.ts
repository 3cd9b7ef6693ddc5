import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { generateBytes, MediaTypes, pushImage, sha256, type PushedImage } from '../../helpers/images.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { readDirImage, skopeoCopy } from '../../helpers/skopeo.js';
import { Cleanup, makeTempDir, type TempDir } from '../../helpers/tmp.js';

/** The push and content-management API of hosted repositories, with a raw HTTP client and with skopeo. */
const cleanup = new Cleanup();
let hub: HubFront;
let mirror: TestMirror;
let storage: TempDir;
let upstreamImage: PushedImage;

const HOSTED = { mirror: { hosted: { repositories: ['team/**', 'ci/*'] } } };

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  code(): string;
}

async function call(method: string, path: string, opts: { body?: Buffer | string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const res = await request(`${mirror.url}${path}`, { method: method as 'GET', headers: opts.headers ?? {}, ...(opts.body !== undefined ? { body: opts.body } : {}) });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, code: () => (JSON.parse(body.toString()) as { errors: { code: string }[] }).errors[0]!.code };
}

const header = (a: Answer, name: string): string => String(a.headers[name]);

async function pushBlob(repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const res = await call('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  expect(res.status).toBe(201);
  return digest;
}

function imageManifest(config: { digest: string; size: number }, layers: { digest: string; size: number }[], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })),
      ...extra,
    }),
  );
}

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  upstreamImage = await pushImage(registry.url, 'library/base', '1', { layers: [30_000, 200_000], format: 'oci', seed: 'base' });
  hub = cleanup.add(await startHubFront({ target: registry.url }));
  storage = cleanup.add(await makeTempDir('mirrorgate-hosted-'));
  mirror = await startMirror({ upstreams: { 'docker.io': hub.url }, storage, config: HOSTED });
}, 120_000);

afterAll(async () => {
  await mirror.stop();
  await cleanup.run();
});

describe('blob uploads', () => {
  it('monolithic POST with ?digest: 201 with Location and Docker-Content-Digest; readable by digest', async () => {
    const bytes = generateBytes('mono', 100_000);
    const digest = sha256(bytes);
    const res = await call('POST', `/v2/team/app/blobs/uploads/?digest=${digest}`, { body: bytes });
    expect(res.status).toBe(201);
    expect(header(res, 'location')).toBe(`/v2/team/app/blobs/${digest}`);
    expect(header(res, 'docker-content-digest')).toBe(digest);
    const back = await call('GET', `/v2/team/app/blobs/${digest}`);
    expect(back.status).toBe(200);
    expect(sha256(back.body)).toBe(digest);
    expect((await call('HEAD', `/v2/team/app/blobs/${digest}`)).status).toBe(200);
  });

  it('a session: POST, PATCH chunks in order with Content-Range, status, PUT with the digest', async () => {
    const bytes = generateBytes('chunked', 3 * 1024 * 1024 + 17);
    const digest = sha256(bytes);
    const start = await call('POST', '/v2/team/app/blobs/uploads/');
    expect(start.status).toBe(202);
    const location = header(start, 'location');
    expect(location).toMatch(/^\/v2\/team\/app\/blobs\/uploads\/[0-9a-f]{32}$/);
    expect(header(start, 'docker-upload-uuid')).toBe(location.split('/').pop());
    expect(header(start, 'range')).toBe('0-0');
    const cuts = [0, 1024 * 1024, 2 * 1024 * 1024 + 5, bytes.length];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const chunk = bytes.subarray(cuts[i], cuts[i + 1]);
      const res = await call('PATCH', location, { body: chunk, headers: { 'content-type': 'application/octet-stream', 'content-range': `${cuts[i]}-${cuts[i + 1]! - 1}` } });
      expect(res.status).toBe(202);
      expect(header(res, 'range')).toBe(`0-${cuts[i + 1]! - 1}`);
      expect(header(res, 'location')).toBe(location);
    }
    const status = await call('GET', location);
    expect(status.status).toBe(204);
    expect(header(status, 'range')).toBe(`0-${bytes.length - 1}`);
    // Not readable before it is closed.
    expect((await call('GET', `/v2/team/app/blobs/${digest}`)).status).toBe(404);
    const done = await call('PUT', `${location}?digest=${digest}`);
    expect(done.status).toBe(201);
    expect(header(done, 'location')).toBe(`/v2/team/app/blobs/${digest}`);
    expect(sha256((await call('GET', `/v2/team/app/blobs/${digest}`)).body)).toBe(digest);
    // The session is gone.
    expect((await call('GET', location)).status).toBe(404);
  });

  it('an out-of-order chunk: 416 with the current range; the upload goes on from there', async () => {
    const bytes = generateBytes('order', 20_000);
    const start = await call('POST', '/v2/team/app/blobs/uploads/');
    const location = header(start, 'location');
    expect((await call('PATCH', location, { body: bytes.subarray(0, 10_000), headers: { 'content-range': '0-9999' } })).status).toBe(202);
    const wrong = await call('PATCH', location, { body: bytes.subarray(15_000), headers: { 'content-range': '15000-19999' } });
    expect(wrong.status).toBe(416);
    expect(header(wrong, 'range')).toBe('0-9999');
    expect((await call('PATCH', location, { body: bytes.subarray(10_000), headers: { 'content-range': '10000-19999' } })).status).toBe(202);
    expect((await call('PUT', `${location}?digest=${sha256(bytes)}`)).status).toBe(201);
  });

  it('a wrong digest on close: DIGEST_INVALID, nothing stored; a cancelled upload is gone', async () => {
    const bytes = generateBytes('wrong', 5000);
    const start = await call('POST', '/v2/team/app/blobs/uploads/');
    const location = header(start, 'location');
    const bad = await call('PUT', `${location}?digest=${sha256(Buffer.from('other'))}`, { body: bytes });
    expect(bad.status).toBe(400);
    expect(bad.code()).toBe('DIGEST_INVALID');
    expect((await call('GET', `/v2/team/app/blobs/${sha256(bytes)}`)).status).toBe(404);

    const other = header(await call('POST', '/v2/team/app/blobs/uploads/'), 'location');
    expect((await call('DELETE', other)).status).toBe(204);
    const gone = await call('GET', other);
    expect(gone.status).toBe(404);
    expect(gone.code()).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('an upload survives a restart of the mirror and is finished after it', async () => {
    const bytes = generateBytes('restart', 2 * 1024 * 1024);
    const location = header(await call('POST', '/v2/ci/builds/blobs/uploads/'), 'location');
    expect((await call('PATCH', location, { body: bytes.subarray(0, 1024 * 1024) })).status).toBe(202);
    await mirror.stop();
    mirror = await startMirror({ upstreams: { 'docker.io': hub.url }, storage, config: HOSTED });
    const status = await call('GET', location);
    expect(status.status).toBe(204);
    expect(header(status, 'range')).toBe(`0-${1024 * 1024 - 1}`);
    expect((await call('PATCH', location, { body: bytes.subarray(1024 * 1024) })).status).toBe(202);
    expect((await call('PUT', `${location}?digest=${sha256(bytes)}`)).status).toBe(201);
    expect(sha256((await call('GET', `/v2/ci/builds/blobs/${sha256(bytes)}`)).body)).toBe(sha256(bytes));
  });

  it('an upload belongs to its repository', async () => {
    const location = header(await call('POST', '/v2/team/app/blobs/uploads/'), 'location');
    const id = location.split('/').pop()!;
    const res = await call('GET', `/v2/team/other/blobs/uploads/${id}`);
    expect(res.status).toBe(404);
    expect(res.code()).toBe('BLOB_UPLOAD_UNKNOWN');
  });
});

describe('manifests', () => {
  it('PUT by tag: 201 with Location and Docker-Content-Digest; GET by tag and digest; tags/list; catalog', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const layer = generateBytes('layer-a', 50_000);
    const c = { digest: await pushBlob('team/web', config), size: config.length };
    const l = { digest: await pushBlob('team/web', layer), size: layer.length };
    const manifest = imageManifest(c, [l]);
    const put = await call('PUT', '/v2/team/web/manifests/v1', { body: manifest, headers: { 'content-type': MediaTypes.ociManifest } });
    expect(put.status).toBe(201);
    expect(header(put, 'docker-content-digest')).toBe(sha256(manifest));
    expect(header(put, 'location')).toBe(`/v2/team/web/manifests/${sha256(manifest)}`);
    for (const ref of ['v1', sha256(manifest)]) {
      const got = await call('GET', `/v2/team/web/manifests/${ref}`, { headers: { accept: MediaTypes.ociManifest } });
      expect(got.status).toBe(200);
      expect(got.body.equals(manifest)).toBe(true);
      expect(header(got, 'content-type')).toBe(MediaTypes.ociManifest);
    }
    await call('PUT', '/v2/team/web/manifests/v2', { body: manifest, headers: { 'content-type': MediaTypes.ociManifest } });
    expect(JSON.parse((await call('GET', '/v2/team/web/tags/list')).body.toString())).toEqual({ name: 'team/web', tags: ['v1', 'v2'] });
    const page = await call('GET', '/v2/team/web/tags/list?n=1');
    expect(JSON.parse(page.body.toString())).toEqual({ name: 'team/web', tags: ['v1'] });
    expect(header(page, 'link')).toContain('last=v1');
    const catalog = JSON.parse((await call('GET', '/v2/_catalog')).body.toString()) as { repositories: string[] };
    expect(catalog.repositories).toContain('team/web');
  });

  it('refuses a manifest whose blobs are not in the repository, a digest that does not match, and a body that is not a manifest', async () => {
    const config = Buffer.from('{"os":"linux"}');
    const c = { digest: await pushBlob('team/strict', config), size: config.length };
    // Held by another repository only: not good enough.
    const layer = generateBytes('elsewhere', 1000);
    const l = { digest: await pushBlob('team/elsewhere', layer), size: layer.length };
    const missing = await call('PUT', '/v2/team/strict/manifests/v1', { body: imageManifest(c, [l]), headers: { 'content-type': MediaTypes.ociManifest } });
    expect(missing.status).toBe(404);
    expect(missing.code()).toBe('MANIFEST_BLOB_UNKNOWN');
    const good = imageManifest(c, []);
    const mismatch = await call('PUT', `/v2/team/strict/manifests/${sha256(Buffer.from('x'))}`, { body: good, headers: { 'content-type': MediaTypes.ociManifest } });
    expect(mismatch.status).toBe(400);
    expect(mismatch.code()).toBe('DIGEST_INVALID');
    const junk = await call('PUT', '/v2/team/strict/manifests/v1', { body: '{"hello":1}', headers: { 'content-type': MediaTypes.ociManifest } });
    expect(junk.status).toBe(400);
    expect(junk.code()).toBe('MANIFEST_INVALID');
    const badTag = await call('PUT', '/v2/team/strict/manifests/-bad', { body: good, headers: { 'content-type': MediaTypes.ociManifest } });
    expect(badTag.status).toBe(400);
    expect(badTag.code()).toBe('TAG_INVALID');
    expect((await call('GET', '/v2/team/strict/manifests/v1')).status).toBe(404);
  });

  it('a manifest with a subject answers OCI-Subject and is listed among the referrers', async () => {
    const config = Buffer.from('{}');
    const c = { digest: await pushBlob('team/sig', config), size: config.length };
    const subjectBytes = imageManifest(c, []);
    await call('PUT', '/v2/team/sig/manifests/v1', { body: subjectBytes, headers: { 'content-type': MediaTypes.ociManifest } });
    const subject = { mediaType: MediaTypes.ociManifest, digest: sha256(subjectBytes), size: subjectBytes.length };
    const referrer = imageManifest({ ...c }, [], { artifactType: 'application/vnd.example.sig', subject });
    const put = await call('PUT', `/v2/team/sig/manifests/${sha256(referrer)}`, { body: referrer, headers: { 'content-type': MediaTypes.ociManifest } });
    expect(put.status).toBe(201);
    expect(header(put, 'oci-subject')).toBe(subject.digest);
    const index = JSON.parse((await call('GET', `/v2/team/sig/referrers/${subject.digest}`)).body.toString()) as { manifests: { digest: string; artifactType: string }[] };
    expect(index.manifests).toEqual([expect.objectContaining({ digest: sha256(referrer), artifactType: 'application/vnd.example.sig' })]);
  });

  it('deletes a tag, a manifest (with its tags) and a blob', async () => {
    const config = Buffer.from('{"n":1}');
    const c = { digest: await pushBlob('team/del', config), size: config.length };
    const m = imageManifest(c, []);
    for (const tag of ['a', 'b']) await call('PUT', `/v2/team/del/manifests/${tag}`, { body: m, headers: { 'content-type': MediaTypes.ociManifest } });
    expect((await call('DELETE', '/v2/team/del/manifests/a')).status).toBe(202);
    expect((await call('GET', '/v2/team/del/manifests/a')).status).toBe(404);
    expect((await call('GET', '/v2/team/del/manifests/b')).status).toBe(200);
    expect((await call('DELETE', `/v2/team/del/manifests/${sha256(m)}`)).status).toBe(202);
    expect((await call('GET', '/v2/team/del/manifests/b')).status).toBe(404);
    expect((await call('GET', `/v2/team/del/manifests/${sha256(m)}`)).status).toBe(404);
    expect((await call('DELETE', `/v2/team/del/manifests/${sha256(m)}`)).status).toBe(404);
    expect((await call('DELETE', `/v2/team/del/blobs/${c.digest}`)).status).toBe(202);
    expect((await call('GET', `/v2/team/del/blobs/${c.digest}`)).status).toBe(404);
  });
});

describe('proxied repositories stay read-only', () => {
  it('pushes answer 403 DENIED and deletes 405 UNSUPPORTED, and nothing is stored or sent upstream', async () => {
    hub.reset();
    const post = await call('POST', '/v2/library/base/blobs/uploads/');
    expect(post.status).toBe(403);
    expect(post.code()).toBe('DENIED');
    const put = await call('PUT', '/v2/library/base/manifests/evil', { body: imageManifest({ digest: sha256(Buffer.from('x')), size: 1 }, []), headers: { 'content-type': MediaTypes.ociManifest } });
    expect(put.status).toBe(403);
    const del = await call('DELETE', `/v2/library/base/manifests/${upstreamImage.digest}`);
    expect(del.status).toBe(405);
    expect(del.code()).toBe('UNSUPPORTED');
    expect((await call('DELETE', `/v2/docker.io/team/app/blobs/${sha256(Buffer.from('x'))}`)).status).toBe(405);
    expect(hub.count({ method: 'PUT' }) + hub.count({ method: 'POST' }) + hub.count({ method: 'DELETE' })).toBe(0);
  });

  it('an explicit docker.io/ name is Docker Hub, never the hosted repository of the same path', async () => {
    const res = await call('POST', '/v2/docker.io/team/app/blobs/uploads/');
    expect(res.status).toBe(403);
  });
});

describe('skopeo', () => {
  it('copies an image from a proxied repository into a hosted one, and back out by tag and by digest', async () => {
    const dest = `docker://${mirror.host}/team/copied:v1`;
    await skopeoCopy(`docker://${mirror.host}/library/base:1`, dest, { throwOnError: true });
    const out = cleanup.add(await makeTempDir('mirrorgate-pull-'));
    await skopeoCopy(`${dest}`, `dir:${out.path}`, { throwOnError: true });
    const image = await readDirImage(out.path);
    expect(image.manifestDigest).toBe(upstreamImage.digest);
    const byDigest = cleanup.add(await makeTempDir('mirrorgate-pull-'));
    await skopeoCopy(`docker://${mirror.host}/team/copied@${upstreamImage.digest}`, `dir:${byDigest.path}`, { throwOnError: true });
  }, 60_000);
});
