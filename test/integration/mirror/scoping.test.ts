import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/common/clock.js';
import { FsStorage } from '../../../src/mirror/store/fs/fs-storage.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { generateBytes, MediaTypes, pushBlob, pushImage, sha256, type BlobRef, type PushedImage } from '../../helpers/images.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/http.js';

/**
 * Reads are scoped to repositories: content stored once for one repository (or one upstream) is never
 * served through another name unless that repository holds it, which for a proxied repository its upstream
 * confirms once, with a HEAD, never a second download.
 */
const cleanup = new Cleanup();
let hub: HubFront;
let ghcr: HubFront;
let mirror: TestMirror;
let secret: PushedImage;
let shared: BlobRef;
const ACCEPT = [MediaTypes.ociIndex, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.dockerManifest].join(', ');

async function get(url: string, method: 'GET' | 'HEAD' = 'GET', headers: Record<string, string> = {}) {
  const res = await request(url, { method, headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, body, code: () => (JSON.parse(body.toString()) as { errors: { code: string }[] }).errors[0]!.code };
}

/** Blob requests the upstream answered with a token (its 401 challenges left out). */
function answered(front: HubFront, method: 'GET' | 'HEAD'): number {
  return front.requests.filter((r) => r.kind === 'blob' && r.method === method && r.authorized).length;
}

beforeAll(async () => {
  const hubRegistry = cleanup.add(await startDockerRegistry());
  const ghcrRegistry = cleanup.add(await startDockerRegistry());
  secret = await pushImage(hubRegistry.url, 'team/private', 'v1', { layers: [50_000], format: 'oci', seed: 'secret' });
  // The same bytes pushed to another repository on the same upstream: it holds them too.
  const bytes = generateBytes('shared-layer', 200_000);
  shared = await pushBlob(hubRegistry.url, 'team/first', bytes);
  await pushBlob(hubRegistry.url, 'team/second', bytes);
  await pushImage(ghcrRegistry.url, 'team/private', 'v1', { layers: [1000], format: 'oci', seed: 'ghcr' });
  hub = cleanup.add(await startHubFront({ target: hubRegistry.url }));
  ghcr = cleanup.add(await startHubFront({ target: ghcrRegistry.url }));
  mirror = cleanup.add(await startMirror({ upstreams: { 'docker.io': hub.url, 'ghcr.io': ghcr.url } }));
  // Cache the private image through its own name.
  expect((await get(`${mirror.url}/v2/team/private/manifests/v1`, 'GET', { accept: ACCEPT })).status).toBe(200);
  for (const b of [secret.config, ...secret.layers]) expect((await get(`${mirror.url}/v2/team/private/blobs/${b.digest}`)).status).toBe(200);
}, 120_000);

afterAll(() => cleanup.run());

beforeEach(() => {
  hub.reset();
  ghcr.reset();
});

describe('reads scoped to repositories', () => {
  it('a cached blob is not served through another repository its upstream does not hold it in', async () => {
    const layer = secret.layers[0]!.digest;
    for (const name of ['team/other', 'library/alpine', 'ghcr.io/team/private']) {
      const res = await get(`${mirror.url}/v2/${name}/blobs/${layer}`);
      expect(res.status, name).toBe(404);
      expect(res.code()).toBe('BLOB_UNKNOWN');
      expect((await get(`${mirror.url}/v2/${name}/blobs/${layer}`, 'HEAD')).status, name).toBe(404);
    }
    // Asked only with HEADs (one per request: a refusal is not remembered); nothing was downloaded again.
    expect(hub.count({ kind: 'blob', method: 'GET' }) + ghcr.count({ kind: 'blob', method: 'GET' })).toBe(0);
    expect(answered(hub, 'HEAD')).toBe(4);
    expect(answered(ghcr, 'HEAD')).toBe(2);
  });

  it('a cached manifest is not served by digest through another repository', async () => {
    for (const method of ['GET', 'HEAD'] as const) {
      const res = await get(`${mirror.url}/v2/team/other/manifests/${secret.digest}`, method, { accept: ACCEPT });
      expect(res.status).toBe(404);
      if (method === 'GET') expect(res.code()).toBe('MANIFEST_UNKNOWN');
    }
    expect(hub.count({ kind: 'manifest', method: 'GET' })).toBe(0);
  });

  it('a repository that holds the same blob upstream is served from the cache after one HEAD, then with no upstream request', async () => {
    const first = await get(`${mirror.url}/v2/team/first/blobs/${shared.digest}`);
    expect(first.status).toBe(200);
    expect(sha256(first.body)).toBe(shared.digest);
    expect(answered(hub, 'GET')).toBe(1);
    // The last byte goes out once verified, just before the blob is committed: wait for the commit.
    await waitFor(() => !mirror.server.blobs.isFetching(shared.digest));
    hub.reset();
    const second = await get(`${mirror.url}/v2/team/second/blobs/${shared.digest}`);
    expect(second.status).toBe(200);
    expect(sha256(second.body)).toBe(shared.digest);
    expect(answered(hub, 'HEAD')).toBe(1);
    expect(hub.count({ kind: 'blob', method: 'GET' })).toBe(0);
    hub.reset();
    expect((await get(`${mirror.url}/v2/team/second/blobs/${shared.digest}`)).status).toBe(200);
    expect((await get(`${mirror.url}/v2/team/second/blobs/${shared.digest}`, 'HEAD')).status).toBe(200);
    expect(hub.count()).toBe(0);
  });

  it('the blobs a pulled manifest names are held by its repository: pulling them asks the upstream nothing more', async () => {
    hub.reset();
    for (const b of [secret.config, ...secret.layers]) expect((await get(`${mirror.url}/v2/team/private/blobs/${b.digest}`)).status).toBe(200);
    expect(hub.count()).toBe(0);
  });
});

describe('two mirrors on one storage', () => {
  it('share one download of a cold blob through the download lease', async () => {
    const registry = cleanup.add(await startDockerRegistry());
    const blob = await pushBlob(registry.url, 'library/herd', generateBytes('herd', 4 * 1024 * 1024));
    const front = cleanup.add(await startHubFront({ target: registry.url }));
    const dir = cleanup.add(await makeTempDir('mirrorgate-shared-'));
    // One storage object: in one process its metadata store (and its leases) are shared, as Redis shares them across processes.
    const storage = new FsStorage(dir.path, systemClock);
    const a = cleanup.add(await startMirror({ upstreams: { 'docker.io': front.url }, storage: dir, deps: { storage } }));
    const b = cleanup.add(await startMirror({ upstreams: { 'docker.io': front.url }, storage: dir, deps: { storage } }));
    front.reset();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => get(`${(i % 2 ? a : b).url}/v2/library/herd/blobs/${blob.digest}`)));
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(sha256(r.body)).toBe(blob.digest);
    }
    expect(answered(front, 'GET')).toBe(1);
  });
});
