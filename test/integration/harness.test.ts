import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { startDockerRegistry } from '../helpers/docker-registry.js';
import type { DockerRegistry } from '../helpers/docker-registry.js';
import { startHubFront } from '../helpers/hub-front.js';
import type { HubFront, HubFrontOptions } from '../helpers/hub-front.js';
import {
  ALL_MANIFEST_TYPES,
  MediaTypes,
  fetchBlob,
  fetchManifest,
  generateBytes,
  generatedDigest,
  pushBigBlob,
  pushImage,
  pushMultiArch,
  pushReferrer,
  referrersTag,
  sha256,
} from '../helpers/images.js';
import type { BlobRef, PushedArtifact, PushedImage, PushedIndex } from '../helpers/images.js';
import { readDirImage, skopeoCopy, skopeoInspectRaw } from '../helpers/skopeo.js';
import { freePort, makeTempDir, useCleanup } from '../helpers/tmp.js';

// The harness itself, proved against the real parts: Debian's docker-registry, the Docker Hub-like front,
// and skopeo.

const fileScope = useCleanup('all');
const testScope = useCleanup('each');

let registry: DockerRegistry;
let dockerImage: PushedImage;
let ociImage: PushedImage;
let ociIndex: PushedIndex;
let dockerList: PushedIndex;
let big: BlobRef;
let sig: PushedArtifact;
const BIG = 20 << 20;

beforeAll(async () => {
  registry = fileScope.add(await startDockerRegistry());
  dockerImage = await pushImage(registry.url, 'library/x', '1', { layers: [1000, 300_000], format: 'docker', seed: 'x1' });
  ociImage = await pushImage(registry.url, 'org/oci', 'v1', { layers: [2048, 6 << 20], format: 'oci', seed: 'oci' });
  ociIndex = await pushMultiArch(registry.url, 'library/multi', 'latest', { layers: [4096], format: 'oci', seed: 'm' });
  dockerList = await pushMultiArch(registry.url, 'library/multi', 'docker', { layers: [4096], format: 'docker', seed: 'md' });
  big = await pushBigBlob(registry.url, 'library/big', BIG, 'big', { partSize: 8 << 20 });
  sig = await pushReferrer(registry.url, 'org/oci', ociImage.descriptor, 'application/vnd.example.signature');
  await pushReferrer(registry.url, 'org/oci', ociImage.descriptor, 'application/vnd.example.sbom');
});

async function newFront(opts: Omit<HubFrontOptions, 'target'> = {}): Promise<HubFront> {
  return testScope.add(await startHubFront({ target: registry.url, ...opts }));
}

async function tokenFor(front: HubFront, repo: string, basic?: string): Promise<string> {
  const headers: Record<string, string> = basic ? { authorization: `Basic ${Buffer.from(basic).toString('base64')}` } : {};
  const res = await request(`${front.url}/token?service=hub-front&scope=repository:${repo}:pull`, { headers });
  expect(res.statusCode).toBe(200);
  const body = (await res.body.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
  expect(body.access_token).toBe(body.token);
  return body.token;
}

async function streamDigest(url: string, headers: Record<string, string> = {}): Promise<{ status: number; digest: string; size: number }> {
  const res = await request(url, { headers });
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { status: res.statusCode, digest: `sha256:${hash.digest('hex')}`, size };
}

describe('docker-registry and images', () => {
  test('serves the pushed manifests byte for byte, with their media types', async () => {
    for (const [repo, ref, pushed] of [
      ['library/x', '1', dockerImage],
      ['org/oci', 'v1', ociImage],
      ['library/multi', 'latest', ociIndex],
      ['library/multi', 'docker', dockerList],
    ] as const) {
      const got = await fetchManifest(registry.url, repo, ref);
      expect(got.digest).toBe(pushed.digest);
      expect(got.bytes.equals(pushed.manifestBytes)).toBe(true);
      expect(got.headers['docker-content-digest']).toBe(pushed.digest);
      expect(got.headers['content-type']).toBe(pushed.mediaType);
    }
    expect(dockerImage.mediaType).toBe(MediaTypes.dockerManifest);
    expect(dockerList.mediaType).toBe(MediaTypes.dockerManifestList);
    const index = JSON.parse(ociIndex.manifestBytes.toString()) as { manifests: { platform: { architecture: string } }[] };
    expect(index.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    // Children by digest.
    for (const child of ociIndex.manifests) {
      expect((await fetchManifest(registry.url, 'library/multi', child.digest)).digest).toBe(child.digest);
    }
  });

  test('serves the blobs: small layers are real gzip tarballs, big layers raw bytes', async () => {
    for (const image of [dockerImage, ociImage]) {
      for (const blob of [image.config, ...image.layers]) {
        const got = await fetchBlob(registry.url, image.repo, blob.digest);
        expect(got.digest).toBe(blob.digest);
        expect(got.bytes.length).toBe(blob.size);
      }
    }
    const small = await fetchBlob(registry.url, 'library/x', (dockerImage.layers[0] as BlobRef).digest);
    expect([small.bytes[0], small.bytes[1]]).toEqual([0x1f, 0x8b]);
    expect((ociImage.layers[1] as BlobRef).size).toBe(6 << 20); // above GZIP_TAR_MAX: exact size, raw
    // Same seed, same digests.
    const again = await pushImage(registry.url, 'library/x', 'again', { layers: [1000, 300_000], format: 'docker', seed: 'x1' });
    expect(again.digest).toBe(dockerImage.digest);
  });

  test('the big blob was streamed in parts and reads back whole and by range', async () => {
    expect(big).toEqual({ digest: generatedDigest('big', BIG), size: BIG });
    const whole = await streamDigest(`${registry.url}/v2/library/big/blobs/${big.digest}`);
    expect(whole).toEqual({ status: 200, digest: big.digest, size: BIG });
    const part = await fetchBlob(registry.url, 'library/big', big.digest, { range: 'bytes=10000000-10000099' });
    expect(part.status).toBe(206);
    expect(part.bytes.equals(generateBytes('big', 100, 10_000_000))).toBe(true);
  });

  test('the referrer is stored with its subject and listed in the fallback tag', async () => {
    const got = await fetchManifest(registry.url, 'org/oci', sig.digest);
    const manifest = JSON.parse(got.bytes.toString()) as { subject: { digest: string }; artifactType: string };
    expect(manifest.subject.digest).toBe(ociImage.digest);
    expect(manifest.artifactType).toBe('application/vnd.example.signature');
    const fallback = await fetchManifest(registry.url, 'org/oci', referrersTag(ociImage.digest), MediaTypes.ociIndex);
    const list = JSON.parse(fallback.bytes.toString()) as { manifests: { artifactType: string }[] };
    expect(list.manifests.map((m) => m.artifactType)).toEqual(['application/vnd.example.signature', 'application/vnd.example.sbom']);
  });

  test('stop() ends the process and removes its storage', async () => {
    const other = await startDockerRegistry();
    const { default: fs } = await import('node:fs');
    expect(fs.existsSync(other.storageDir)).toBe(true);
    await other.stop();
    expect(fs.existsSync(other.storageDir)).toBe(false);
    await expect(request(`${other.url}/v2/`)).rejects.toThrow();
  });
});

describe('hub-front auth', () => {
  test('anonymous requests get a Bearer challenge; a token opens its repository only', async () => {
    const front = await newFront();
    const anon = await request(`${front.url}/v2/library/x/manifests/1`);
    expect(anon.statusCode).toBe(401);
    expect(anon.headers['www-authenticate']).toBe(
      `Bearer realm="${front.url}/token",service="hub-front",scope="repository:library/x:pull"`,
    );
    expect(((await anon.body.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('UNAUTHORIZED');
    const base = await request(`${front.url}/v2/`);
    await base.body.dump();
    expect(base.headers['www-authenticate']).toBe(`Bearer realm="${front.url}/token",service="hub-front"`);

    const token = await tokenFor(front, 'library/x');
    const ok = await request(`${front.url}/v2/library/x/manifests/1`, {
      headers: { authorization: `Bearer ${token}`, accept: ALL_MANIFEST_TYPES },
    });
    const bytes = Buffer.from(await ok.body.arrayBuffer());
    expect(ok.statusCode).toBe(200);
    expect(sha256(bytes)).toBe(dockerImage.digest);
    expect(ok.headers['docker-content-digest']).toBe(dockerImage.digest);
    expect(ok.headers['ratelimit-remaining']).toBe('99;w=21600');

    const otherRepo = await request(`${front.url}/v2/org/oci/manifests/v1`, { headers: { authorization: `Bearer ${token}` } });
    await otherRepo.body.dump();
    expect(otherRepo.statusCode).toBe(401);

    front.revokeTokens();
    const revoked = await request(`${front.url}/v2/library/x/manifests/1`, { headers: { authorization: `Bearer ${token}` } });
    await revoked.body.dump();
    expect(revoked.statusCode).toBe(401);

    expect(front.count({ kind: 'manifest' })).toBe(4);
    expect(front.count({ kind: 'manifest', method: 'GET', pathIncludes: 'library/x' })).toBe(3);
    expect(front.requests.filter((r) => r.authorized).map((r) => `${r.kind} ${r.status}`)).toEqual(['token 200', 'manifest 200']);
    front.reset();
    expect(front.count()).toBe(0);
  });

  test('with credentials, the token endpoint wants Basic auth, and skopeo passes them', async () => {
    const front = await newFront({ credentials: { username: 'u', password: 'p' } });
    const noCreds = await request(`${front.url}/token?service=hub-front&scope=repository:library/x:pull`);
    await noCreds.body.dump();
    expect(noCreds.statusCode).toBe(401);
    await tokenFor(front, 'library/x', 'u:p');
    const out = testScope.add(await makeTempDir('harness-creds-'));
    const refused = await skopeoCopy(`docker://${front.host}/library/x:1`, `dir:${join(out.path, 'a')}`);
    expect(refused.code).not.toBe(0);
    await skopeoCopy(`docker://${front.host}/library/x:1`, `dir:${join(out.path, 'b')}`, { srcCreds: 'u:p', throwOnError: true });
    expect((await readDirImage(join(out.path, 'b'))).manifestDigest).toBe(dockerImage.digest);
  });

  test('tags are paginated with Link; referrers are served from the fallback tag when asked', async () => {
    const front = await newFront({ referrers: true });
    const auth = { authorization: `Bearer ${await tokenFor(front, 'library/multi')}` };
    const page1 = await request(`${front.url}/v2/library/multi/tags/list?n=1`, { headers: auth });
    expect(await page1.body.json()).toEqual({ name: 'library/multi', tags: ['docker'] });
    expect(page1.headers.link).toBe('</v2/library/multi/tags/list?last=docker&n=1>; rel="next"');
    const page2 = await request(`${front.url}/v2/library/multi/tags/list?last=docker&n=1`, { headers: auth });
    expect(await page2.body.json()).toEqual({ name: 'library/multi', tags: ['latest'] });
    expect(page2.headers.link).toBeUndefined();

    const ociAuth = { authorization: `Bearer ${await tokenFor(front, 'org/oci')}` };
    const refs = await request(`${front.url}/v2/org/oci/referrers/${ociImage.digest}?artifactType=application/vnd.example.signature`, {
      headers: ociAuth,
    });
    expect(refs.headers['content-type']).toBe(MediaTypes.ociIndex);
    expect(refs.headers['oci-filters-applied']).toBe('artifactType');
    const body = (await refs.body.json()) as { manifests: { digest: string }[] };
    expect(body.manifests.map((m) => m.digest)).toEqual([sig.digest]);
    const none = await request(`${front.url}/v2/org/oci/referrers/${dockerImage.digest}`, { headers: ociAuth });
    expect(((await none.body.json()) as { manifests: unknown[] }).manifests).toEqual([]);
  });
});

describe('skopeo through hub-front', () => {
  test('copies a single image (token flow) with the upstream digests', async () => {
    const front = await newFront();
    const out = testScope.add(await makeTempDir('harness-skopeo-'));
    await skopeoCopy(`docker://${front.host}/library/x:1`, `dir:${out.path}`, { throwOnError: true });
    const dir = await readDirImage(out.path);
    expect(dir.manifestDigest).toBe(dockerImage.digest);
    expect(dir.blobs.sort()).toEqual([dockerImage.config, ...dockerImage.layers].map((b) => b.digest).sort());
    expect(front.count({ kind: 'token' })).toBe(1);
    expect(front.count({ kind: 'blob', method: 'GET' })).toBe(3);
    const raw = await skopeoInspectRaw(`docker://${front.host}/library/x:1`);
    expect(raw.digest).toBe(dockerImage.digest);
  });

  test('copies a multi-arch index with --multi-arch all, blobs via the CDN, no Authorization there', async () => {
    const front = await newFront({ redirectBlobsTo: 'cdn' });
    const out = testScope.add(await makeTempDir('harness-skopeo-cdn-'));
    await skopeoCopy(`docker://${front.host}/library/multi:latest`, `dir:${out.path}`, { multiArch: 'all', throwOnError: true });
    const dir = await readDirImage(out.path);
    expect(dir.manifestDigest).toBe(ociIndex.digest);
    expect([...dir.instances.keys()].sort()).toEqual(ociIndex.manifests.map((m) => m.digest).sort());
    expect(dir.blobs).toHaveLength(4);
    expect(front.count({ kind: 'blob', method: 'GET' })).toBe(4);
    expect(front.requests.filter((r) => r.kind === 'blob').every((r) => r.status === 307)).toBe(true);
    expect(front.cdnRequests).toHaveLength(4);
    expect(front.cdnRequests.every((r) => r.status === 200 && !r.hadAuthorization)).toBe(true);

    // The CDN does record an Authorization header when one arrives (so the assertion above means something).
    const auth = { authorization: `Bearer ${await tokenFor(front, 'library/x')}` };
    const redirect = await request(`${front.url}/v2/library/x/blobs/${dockerImage.config.digest}`, { headers: auth });
    await redirect.body.dump();
    expect(redirect.statusCode).toBe(307);
    const location = redirect.headers.location as string;
    expect(new URL(location).origin).toBe(front.cdnUrl);
    const leaked = await request(location, { headers: auth });
    expect(sha256(Buffer.from(await leaked.body.arrayBuffer()))).toBe(dockerImage.config.digest);
    expect(front.cdnRequests.at(-1)?.hadAuthorization).toBe(true);
  });

  test("docker-registry's own proxy mode pulls through hub-front", async () => {
    const front = await newFront();
    const proxy = testScope.add(await startDockerRegistry({ proxy: { remoteurl: front.url } }));
    const out = testScope.add(await makeTempDir('harness-proxy-'));
    await skopeoCopy(`docker://${proxy.host}/org/oci:v1`, `dir:${out.path}`, { throwOnError: true });
    expect((await readDirImage(out.path)).manifestDigest).toBe(ociImage.digest);
    expect(front.count({ kind: 'blob', method: 'GET' })).toBeGreaterThanOrEqual(3);
  });
});

describe('hub-front faults', () => {
  let front: HubFront;
  let auth: Record<string, string>;
  const layer = (): BlobRef => ociImage.layers[1] as BlobRef; // 6 MiB
  const blobUrl = (): string => `${front.url}/v2/org/oci/blobs/${layer().digest}`;

  beforeAll(async () => {
    front = fileScope.add(await startHubFront({ target: registry.url }));
    auth = { authorization: `Bearer ${await tokenFor(front, 'org/oci')}` };
    front.reset();
  });
  afterEach(() => {
    front.faults.length = 0;
    front.reset();
  });

  test('status: answers with it, without asking the target; spent after `times`', async () => {
    front.faults.push({ match: { kind: 'blob' }, times: 2, action: { type: 'status', status: 429, headers: { 'retry-after': '7' } } });
    for (let i = 0; i < 2; i++) {
      const res = await request(blobUrl(), { headers: auth });
      expect(res.statusCode).toBe(429);
      expect(res.headers['retry-after']).toBe('7');
      expect(((await res.body.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('TOOMANYREQUESTS');
    }
    expect(front.faults).toHaveLength(0);
    expect((await streamDigest(blobUrl(), auth)).digest).toBe(layer().digest);
    expect(front.requests.map((r) => r.fault)).toEqual(['status', 'status', undefined]);
  });

  test('cut: real headers, then a short body and a dead socket', async () => {
    front.faults.push({ match: { kind: 'blob' }, action: { type: 'cut', afterBytes: 100_000 } });
    const res = await request(blobUrl(), { headers: auth });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe(String(layer().size));
    let got = 0;
    await expect(
      (async () => {
        for await (const chunk of res.body as AsyncIterable<Buffer>) got += chunk.length;
      })(),
    ).rejects.toThrow();
    expect(got).toBe(100_000);
  });

  test('corrupt: same length, different digest', async () => {
    front.faults.push({ match: { kind: 'blob', pathIncludes: layer().digest }, action: { type: 'corrupt' } });
    const got = await streamDigest(blobUrl(), auth);
    expect(got.size).toBe(layer().size);
    expect(got.digest).not.toBe(layer().digest);
  });

  test('truncate-length: a clean answer with a smaller Content-Length', async () => {
    front.faults.push({ match: { kind: 'blob' }, action: { type: 'truncate-length', dropBytes: 10 } });
    const res = await request(blobUrl(), { headers: auth });
    expect(res.headers['content-length']).toBe(String(layer().size - 10));
    const bytes = Buffer.from(await res.body.arrayBuffer());
    expect(bytes.length).toBe(layer().size - 10);
    expect(res.headers['docker-content-digest']).toBe(layer().digest);
  });

  test('stall: headers at once, body after the pause; delay: nothing until the pause ends', async () => {
    front.faults.push({ match: { kind: 'manifest' }, action: { type: 'stall', ms: 1200 } });
    let t0 = Date.now();
    const stalled = await request(`${front.url}/v2/org/oci/manifests/v1`, { headers: { ...auth, accept: ALL_MANIFEST_TYPES } });
    const headersAfter = Date.now() - t0;
    const bytes = Buffer.from(await stalled.body.arrayBuffer());
    expect(headersAfter).toBeLessThan(900);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1150);
    expect(sha256(bytes)).toBe(ociImage.digest);

    front.faults.push({ match: { kind: 'manifest' }, action: { type: 'delay', ms: 600 } });
    t0 = Date.now();
    // Without an Accept naming the OCI type, distribution 2.8 answers 404 for an OCI manifest by tag.
    const delayed = await request(`${front.url}/v2/org/oci/manifests/v1`, { headers: { ...auth, accept: MediaTypes.ociManifest } });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(580);
    await delayed.body.dump();
    expect(delayed.statusCode).toBe(200);
  });

  test('refuse: the socket dies with no answer', async () => {
    front.faults.push({ match: { method: 'HEAD', kind: 'manifest' }, action: { type: 'refuse' } });
    await expect(request(`${front.url}/v2/org/oci/manifests/v1`, { method: 'HEAD', headers: auth })).rejects.toThrow();
    expect(front.requests[0]).toMatchObject({ method: 'HEAD', status: 0, fault: 'refuse' });
    const head = await request(`${front.url}/v2/org/oci/manifests/v1`, { method: 'HEAD', headers: { ...auth, accept: ALL_MANIFEST_TYPES } });
    await head.body.dump();
    expect(head.statusCode).toBe(200);
    expect(head.headers['docker-content-digest']).toBe(ociImage.digest);
  });

  test('down() refuses connections; up() comes back on the same port', async () => {
    await front.down();
    expect(front.isDown).toBe(true);
    // A fresh connection (the global pool may still hold the socket that down() just destroyed).
    const fresh = new Agent();
    await expect(request(`${front.url}/v2/`, { dispatcher: fresh })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await fresh.close();
    await front.up();
    const res = await request(`${front.url}/v2/`, { headers: auth });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
  });

  test('Range passes through with Content-Range', async () => {
    const res = await request(blobUrl(), { headers: { ...auth, range: 'bytes=0-9' } });
    expect(res.statusCode).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes 0-9/${layer().size}`);
    expect(Buffer.from(await res.body.arrayBuffer())).toHaveLength(10);
    expect(front.requests[0]?.range).toBe('bytes=0-9');
  });
});

test('freePort gives a bindable port', async () => {
  const port = await freePort();
  expect(port).toBeGreaterThan(0);
});
