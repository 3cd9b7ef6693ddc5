import { readdirSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { MediaTypes, pushImage, pushMultiArch, pushReferrer, sha256, type PushedImage, type PushedIndex } from '../../helpers/images.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { readDirImage, skopeoCopy } from '../../helpers/skopeo.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';

const cleanup = new Cleanup();
const clock = new ManualClock(Date.now());
let hub: HubFront;
let ghcr: HubFront;
let mirror: TestMirror;
let alpine: PushedImage;
let ociImage: PushedImage;
let multi: PushedIndex;
let app: PushedImage;
let hubRegistryUrl: string;

async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(url, { method, headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, json: () => JSON.parse(body.toString()) as Record<string, unknown> };
}

const ACCEPT_ALL = [MediaTypes.ociIndex, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.dockerManifest].join(', ');

beforeAll(async () => {
  const hubRegistry = cleanup.add(await startDockerRegistry());
  const ghcrRegistry = cleanup.add(await startDockerRegistry());
  hubRegistryUrl = hubRegistry.url;
  alpine = await pushImage(hubRegistry.url, 'library/alpine', '3.20', { layers: [2048, 300_000, 1_500_000], format: 'docker', seed: 'alpine' });
  ociImage = await pushImage(hubRegistry.url, 'team/oci', 'v1', { layers: [4096, 65_536], format: 'oci', seed: 'oci' });
  multi = await pushMultiArch(hubRegistry.url, 'library/multi', '1', { layers: [1024, 2048], format: 'oci', seed: 'multi' });
  app = await pushImage(ghcrRegistry.url, 'org/app', 'v1', { layers: [10_000], format: 'oci', seed: 'ghcr-app' });
  for (let i = 0; i < 7; i++) await pushImage(hubRegistry.url, 'library/paged', `t${i}`, { layers: [100], format: 'docker', seed: `paged${i}` });
  hub = cleanup.add(await startHubFront({ target: hubRegistry.url, referrers: true }));
  ghcr = cleanup.add(await startHubFront({ target: ghcrRegistry.url, redirectBlobsTo: 'cdn' }));
  // Its CDN listens on loopback, which redirects may reach only when the upstream's configuration allows it.
  mirror = cleanup.add(await startMirror({ upstreams: { 'docker.io': hub.url, 'ghcr.io': { url: ghcr.url, allowPrivateRedirects: true } }, clock }));
}, 120_000);

afterAll(() => cleanup.run());

beforeEach(() => {
  hub.reset();
  ghcr.reset();
});

async function pull(ref: string, multiArch?: 'all') {
  const out = cleanup.add(await makeTempDir('mirrorgate-pull-'));
  await skopeoCopy(`docker://${mirror.host}/${ref}`, `dir:${out.path}`, { throwOnError: true, ...(multiArch ? { multiArch } : {}) });
  return readDirImage(out.path);
}

describe('pulling through the mirror with skopeo', () => {
  it('pulls a Docker image by tag with the upstream digests, then serves it by digest with no upstream call', async () => {
    const first = await pull('library/alpine:3.20');
    expect(first.manifestDigest).toBe(alpine.digest);
    expect(first.blobs.sort()).toEqual([alpine.config.digest, ...alpine.layers.map((l) => l.digest)].sort());
    expect(hub.count({ kind: 'blob', method: 'GET' })).toBe(4);

    hub.reset();
    const again = await pull(`library/alpine@${alpine.digest}`);
    expect(again.manifestDigest).toBe(alpine.digest);
    expect(hub.count()).toBe(0);
  });

  it('answers a tag within its freshness window with no upstream call, after it with one HEAD', async () => {
    await pull('library/alpine:3.20');
    hub.reset();
    const within = await get(`${mirror.url}/v2/library/alpine/manifests/3.20`, { accept: ACCEPT_ALL });
    expect(within.status).toBe(200);
    expect(within.headers['docker-content-digest']).toBe(alpine.digest);
    expect(hub.count()).toBe(0);

    clock.advance(11 * 60_000);
    const after = await get(`${mirror.url}/v2/library/alpine/manifests/3.20`, { accept: ACCEPT_ALL });
    expect(after.status).toBe(200);
    expect(sha256(after.body)).toBe(alpine.digest);
    expect(hub.count({ kind: 'manifest', method: 'HEAD' })).toBe(1);
    expect(hub.count({ kind: 'manifest', method: 'GET' })).toBe(0);
    expect(hub.count({ kind: 'blob' })).toBe(0);
  });

  it('answers HEAD on an uncached tag with one upstream HEAD and no GET', async () => {
    const res = await get(`${mirror.url}/v2/team/oci/manifests/v1`, { accept: ACCEPT_ALL }, 'HEAD');
    expect(res.status).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(ociImage.digest);
    expect(res.headers['content-type']).toBe(MediaTypes.ociManifest);
    expect(Number(res.headers['content-length'])).toBe(ociImage.manifestBytes.length);
    expect(hub.count({ kind: 'manifest', method: 'HEAD' })).toBe(1);
    expect(hub.count({ kind: 'manifest', method: 'GET' })).toBe(0);
  });

  it("exports Docker Hub's rate-limit headers of manifest responses as gauges", async () => {
    const fresh = cleanup.add(await startMirror({ upstreams: { 'docker.io': hub.url } }));
    hub.rateLimitRemaining = 77;
    const m = await get(`${fresh.url}/v2/team/oci/manifests/v1`, { accept: ACCEPT_ALL });
    expect(m.status).toBe(200);
    const metrics = (await get(`${fresh.url}/metrics`)).body.toString();
    expect(metrics).toContain('mirrorgate_upstream_ratelimit_remaining{upstream="docker.io"} 76');
    expect(metrics).toContain('mirrorgate_upstream_ratelimit_limit{upstream="docker.io"} 100');
  });

  it('keeps multi-arch images multi-arch', async () => {
    const pulled = await pull('library/multi:1', 'all');
    expect(pulled.manifestDigest).toBe(multi.digest);
    const res = await get(`${mirror.url}/v2/library/multi/manifests/1`, { accept: ACCEPT_ALL });
    expect(res.headers['content-type']).toBe(MediaTypes.ociIndex);
    expect(res.body.equals(multi.manifestBytes)).toBe(true);
    // A client that cannot take an index gets the linux/amd64 image, as from distribution.
    const single = await get(`${mirror.url}/v2/library/multi/manifests/1`, { accept: MediaTypes.ociManifest });
    expect(single.status).toBe(200);
    expect(single.headers['docker-content-digest']).toBe(multi.manifests[0]!.digest);
  });

  it('routes a second upstream by host path and by ?ns=, following its CDN redirects without credentials', async () => {
    const pulled = await pull('ghcr.io/org/app:v1');
    expect(pulled.manifestDigest).toBe(app.digest);
    expect(ghcr.cdnRequests.length).toBeGreaterThan(0);
    expect(ghcr.cdnRequests.every((r) => !r.hadAuthorization)).toBe(true);

    ghcr.reset();
    const viaNs = await get(`${mirror.url}/v2/org/app/manifests/v1?ns=ghcr.io`, { accept: ACCEPT_ALL });
    expect(viaNs.status).toBe(200);
    expect(viaNs.headers['docker-content-digest']).toBe(app.digest);
    const blob = await get(`${mirror.url}/v2/org/app/blobs/${app.layers[0]!.digest}?ns=ghcr.io`);
    expect(sha256(blob.body)).toBe(app.layers[0]!.digest);
    expect(ghcr.count()).toBe(0);

    const unknown = await get(`${mirror.url}/v2/org/app/manifests/v1?ns=evil.example`);
    expect(unknown.status).toBe(404);
    expect((unknown.json().errors as { code: string }[])[0]!.code).toBe('NAME_UNKNOWN');
  });

  it('serves Range requests on cached and uncached blobs', async () => {
    const layer = ociImage.layers[1]!;
    const cold = await get(`${mirror.url}/v2/team/oci/blobs/${layer.digest}`, { range: 'bytes=100-199' });
    expect(cold.status).toBe(206);
    expect(cold.headers['content-range']).toBe(`bytes 100-199/${layer.size}`);
    expect(cold.body.length).toBe(100);
    const full = await get(`${mirror.url}/v2/team/oci/blobs/${layer.digest}`);
    expect(full.body.subarray(100, 200).equals(cold.body)).toBe(true);
    const warm = await get(`${mirror.url}/v2/team/oci/blobs/${layer.digest}`, { range: 'bytes=-10' });
    expect(warm.status).toBe(206);
    expect(warm.body.equals(full.body.subarray(full.body.length - 10))).toBe(true);
    const bad = await get(`${mirror.url}/v2/team/oci/blobs/${layer.digest}`, { range: `bytes=${layer.size}-` });
    expect(bad.status).toBe(416);
    expect(bad.headers['content-range']).toBe(`bytes */${layer.size}`);
  });

  it('paginates tags with n, last and Link', async () => {
    const p1 = await get(`${mirror.url}/v2/library/paged/tags/list?n=3`);
    expect(p1.json()).toEqual({ name: 'library/paged', tags: ['t0', 't1', 't2'] });
    expect(p1.headers.link).toBe('</v2/library/paged/tags/list?n=3&last=t2>; rel="next"');
    const p3 = await get(`${mirror.url}/v2/library/paged/tags/list?n=3&last=t5`);
    expect(p3.json()).toEqual({ name: 'library/paged', tags: ['t6'] });
    expect(p3.headers.link).toBeUndefined();
    const bad = await get(`${mirror.url}/v2/library/paged/tags/list?n=abc`);
    expect(bad.status).toBe(400);
    expect((bad.json().errors as { code: string }[])[0]!.code).toBe('PAGINATION_NUMBER_INVALID');
  });

  it('lists cached repositories in _catalog', async () => {
    await pull('library/alpine:3.20');
    const res = await get(`${mirror.url}/v2/_catalog`);
    const repos = res.json().repositories as string[];
    expect(repos).toContain('library/alpine');
    expect(repos).toContain('ghcr.io/org/app');
    expect(repos).not.toContain('library/paged');
    const page = await get(`${mirror.url}/v2/_catalog?n=1`);
    expect((page.json().repositories as string[]).length).toBe(1);
    expect(page.headers.link).toMatch(/rel="next"/);
  });

  it('answers referrers from the upstream when it has the API, with artifactType filtering', async () => {
    const sig = await pushReferrer(hubRegistryUrl, 'team/oci', ociImage.descriptor, 'application/vnd.example.signature');
    const all = await get(`${mirror.url}/v2/team/oci/referrers/${ociImage.digest}`);
    expect(all.status).toBe(200);
    expect(all.headers['content-type']).toBe(MediaTypes.ociIndex);
    expect((all.json().manifests as { digest: string }[]).map((m) => m.digest)).toContain(sig.digest);
    const none = await get(`${mirror.url}/v2/team/oci/referrers/${ociImage.digest}?artifactType=application/vnd.other`);
    expect(none.json().manifests).toEqual([]);
    expect(none.headers['oci-filters-applied']).toBe('artifactType');
  });

  it('answers referrers from what it holds when the upstream lacks the API', async () => {
    const res = await get(`${mirror.url}/v2/ghcr.io/org/app/referrers/${app.digest}`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] });
  });

  it('answers every malformed request with a spec error, never a 500', async () => {
    const cases: [string, number, string][] = [
      ['/v2/Library/alpine/manifests/latest', 400, 'NAME_INVALID'],
      ['/v2/library/alpine/manifests/-bad', 404, 'MANIFEST_UNKNOWN'],
      ['/v2/library/alpine/blobs/sha256:123', 400, 'DIGEST_INVALID'],
      ['/v2/library/alpine/manifests/nosuchtag', 404, 'MANIFEST_UNKNOWN'],
      [`/v2/library/alpine/blobs/sha256:${'0'.repeat(64)}`, 404, 'BLOB_UNKNOWN'],
      ['/v2/library/..%2f..%2fetc/manifests/x', 400, 'NAME_INVALID'],
    ];
    for (const [p, status, code] of cases) {
      const res = await get(`${mirror.url}${p}`);
      expect(res.status, p).toBe(status);
      expect((res.json().errors as { code: string }[])[0]!.code, p).toBe(code);
    }
    // A proxied repository takes no pushes.
    const push = await request(`${mirror.url}/v2/library/alpine/blobs/uploads/`, { method: 'POST' });
    expect(push.statusCode).toBe(403);
    await push.body.dump();
  });

  it('sends the API version, digest, length and type headers', async () => {
    const base = await get(`${mirror.url}/v2/`);
    expect(base.headers['docker-distribution-api-version']).toBe('registry/2.0');
    const blob = await get(`${mirror.url}/v2/library/alpine/blobs/${alpine.config.digest}`, {}, 'HEAD');
    expect(blob.headers['docker-content-digest']).toBe(alpine.config.digest);
    expect(Number(blob.headers['content-length'])).toBe(alpine.config.size);
    expect(blob.headers['content-type']).toBe('application/octet-stream');
    const m = await get(`${mirror.url}/v2/library/alpine/manifests/${alpine.digest}`, { accept: ACCEPT_ALL });
    expect(m.headers['content-type']).toBe(MediaTypes.dockerManifest);
    expect(Number(m.headers['content-length'])).toBe(alpine.manifestBytes.length);
  });

  it('leaves no temp files behind', () => {
    expect(readdirSync(path.join(mirror.storage.path, 'tmp'))).toEqual([]);
  });
});

