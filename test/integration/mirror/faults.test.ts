import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { MediaTypes, pushBigBlob, pushImage, sha256, type BlobRef, type PushedImage } from '../../helpers/images.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { fetchAll, waitFor } from '../../helpers/http.js';
import { Cleanup } from '../../helpers/tmp.js';
import { blobFile as blobFileIn, contentOnDisk } from '../../helpers/cache-disk.js';

const cleanup = new Cleanup();
const clock = new ManualClock(Date.now());
let hub: HubFront;
let mirror: TestMirror;
let registryUrl: string;
let image: PushedImage;
let big: BlobRef;

const ACCEPT = [MediaTypes.ociIndex, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.dockerManifest].join(', ');


function blobFile(digest: string): string {
  return blobFileIn(mirror.storage.path, digest);
}

function tempFiles(): string[] {
  const dir = path.join(mirror.storage.path, 'tmp');
  return existsSync(dir) ? readdirSync(dir) : [];
}

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  registryUrl = registry.url;
  image = await pushImage(registry.url, 'library/app', '1', { layers: [200_000, 3_000_000], format: 'docker', seed: 'faults' });
  big = await pushBigBlob(registry.url, 'library/app', 8 * 1024 * 1024, 'herd');
  hub = cleanup.add(await startHubFront({ target: registry.url }));
  mirror = cleanup.add(await startMirror({ upstreams: { 'docker.io': { url: hub.url, timeouts: { body: '2s' } } }, clock }));
}, 120_000);

afterAll(() => cleanup.run());

beforeEach(async () => {
  hub.faults.length = 0;
  if (hub.isDown) await hub.up();
  hub.reset();
});

describe('one cold blob, one upstream fetch', () => {
  it('20 simultaneous cold GETs of one blob cost 1 upstream GET and all get the verified bytes', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => fetchAll(`${mirror.url}/v2/library/app/blobs/${big.digest}`)));
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.broken).toBe(false);
      expect(sha256(r.body)).toBe(big.digest);
    }
    // The token challenge (a 401 before any transfer) is not a download; count what the upstream served.
    const downloads = hub.requests.filter((r) => r.kind === 'blob' && r.method === 'GET' && r.status === 200);
    expect(downloads.length).toBe(1);
    // Clients get their last byte once the blob is verified; the rename into place follows its sync.
    await waitFor(() => existsSync(blobFile(big.digest)));
  });
});

describe('upstream faults', () => {
  it('a transfer cut mid-blob is resumed with a range request: the client gets the whole verified blob', async () => {
    const layer = image.layers[1]!;
    hub.faults.push({ match: { kind: 'blob', method: 'GET' }, action: { type: 'cut', afterBytes: 1_000_000 } });
    const r = await fetchAll(`${mirror.url}/v2/library/app/blobs/${layer.digest}`);
    expect(r.status).toBe(200);
    expect(r.broken).toBe(false);
    expect(sha256(r.body)).toBe(layer.digest);
    const gets = hub.requests.filter((q) => q.kind === 'blob' && q.method === 'GET' && q.status !== 401);
    expect(gets.length).toBe(2);
    expect(gets[1]!.range).toMatch(/^bytes=\d+-$/);
    await waitFor(() => existsSync(blobFile(layer.digest)));
  });

  it('a transfer that keeps breaking is never stored nor served as complete, and the next request fetches again', async () => {
    const other = await pushImage(registryUrl, 'library/app', null, { layers: [2_000_000], format: 'docker', seed: 'cut-always' });
    const layer = other.layers[0]!;
    hub.faults.push({ match: { kind: 'blob', method: 'GET' }, times: 4, action: { type: 'cut', afterBytes: 100_000 } });
    const r = await fetchAll(`${mirror.url}/v2/library/app/blobs/${layer.digest}`);
    expect(r.broken).toBe(true);
    expect(r.body.length).toBeLessThan(layer.size);
    expect(existsSync(blobFile(layer.digest))).toBe(false);
    await waitFor(() => tempFiles().length === 0);

    const again = await fetchAll(`${mirror.url}/v2/library/app/blobs/${layer.digest}`);
    expect(again.status).toBe(200);
    expect(sha256(again.body)).toBe(layer.digest);
  });

  it('wrong bytes for a digest are refused: the client gets a broken transfer, nothing is stored', async () => {
    const layer = image.layers[0]!;
    hub.faults.push({ match: { kind: 'blob', method: 'GET' }, action: { type: 'corrupt' } });
    const r = await fetchAll(`${mirror.url}/v2/library/app/blobs/${layer.digest}`);
    expect(r.broken).toBe(true);
    expect(r.body.length).toBe(layer.size - 1); // the last byte is held back until verification
    expect(existsSync(blobFile(layer.digest))).toBe(false);
    await waitFor(() => tempFiles().length === 0);
  });

  it('a manifest whose bytes do not match the upstream digest is refused and not stored', async () => {
    hub.faults.push({ match: { kind: 'manifest', method: 'GET' }, action: { type: 'corrupt' } });
    const r = await fetchAll(`${mirror.url}/v2/library/app/manifests/${image.digest}`, { accept: ACCEPT });
    expect(r.status).toBe(502);
    expect(r.code()).toBe('UNAVAILABLE');
    expect(contentOnDisk(mirror.storage.path, 'manifests').has(image.digest)).toBe(false);
  });

  it('passes 429 through with Retry-After for uncached content', async () => {
    hub.faults.push({ match: { kind: 'manifest' }, action: { type: 'status', status: 429, headers: { 'retry-after': '42' } } });
    const r = await fetchAll(`${mirror.url}/v2/library/app/manifests/never-cached`, { accept: ACCEPT });
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('42');
    expect(r.code()).toBe('TOOMANYREQUESTS');
  });

  it('serves cached tags and blobs while the upstream is down; uncached content gets a clear error', async () => {
    const cached = await fetchAll(`${mirror.url}/v2/library/app/manifests/1`, { accept: ACCEPT });
    expect(cached.status).toBe(200);
    await fetchAll(`${mirror.url}/v2/library/app/blobs/${image.config.digest}`);
    clock.advance(3600_000);
    await hub.down();
    const stale = await fetchAll(`${mirror.url}/v2/library/app/manifests/1`, { accept: ACCEPT });
    expect(stale.status).toBe(200);
    expect(sha256(stale.body)).toBe(image.digest);
    const head = await request(`${mirror.url}/v2/library/app/manifests/1`, { method: 'HEAD', headers: { accept: ACCEPT } });
    expect(head.statusCode).toBe(200);
    await head.body.dump();
    const blob = await fetchAll(`${mirror.url}/v2/library/app/blobs/${image.config.digest}`);
    expect(sha256(blob.body)).toBe(image.config.digest);
    const uncached = await fetchAll(`${mirror.url}/v2/library/app/manifests/other`, { accept: ACCEPT });
    expect(uncached.status).toBe(502);
    expect(uncached.code()).toBe('UNAVAILABLE');
  });

  it('serves cached tags when the token endpoint fails, and reports uncached content clearly', async () => {
    clock.advance(3600_000); // expire tokens and the tag's window
    hub.revokeTokens();
    hub.faults.push({ match: { kind: 'token' }, times: Number.POSITIVE_INFINITY, action: { type: 'status', status: 503 } });
    const stale = await fetchAll(`${mirror.url}/v2/library/app/manifests/1`, { accept: ACCEPT });
    expect(stale.status).toBe(200);
    const uncached = await fetchAll(`${mirror.url}/v2/library/app/manifests/2`, { accept: ACCEPT });
    expect(uncached.status).toBe(502);
  });

  it('a stalled upstream body times out and is resumed; a body that stalls every time gives a clean error', async () => {
    const other = await pushImage(registryUrl, 'library/app', null, { layers: [50_000, 60_000], format: 'docker', seed: 'stall' });
    hub.faults.push({ match: { kind: 'blob', method: 'GET' }, action: { type: 'stall', ms: 4000 } });
    const resumed = await fetchAll(`${mirror.url}/v2/library/app/blobs/${other.layers[0]!.digest}`);
    expect(resumed.status).toBe(200);
    expect(sha256(resumed.body)).toBe(other.layers[0]!.digest);

    hub.faults.push({ match: { kind: 'blob', method: 'GET' }, times: 10, action: { type: 'stall', ms: 4000 } });
    const r = await fetchAll(`${mirror.url}/v2/library/app/blobs/${other.layers[1]!.digest}`);
    expect(r.status).toBe(502);
    expect(r.code()).toBe('UNAVAILABLE');
    expect(existsSync(blobFile(other.layers[1]!.digest))).toBe(false);
  }, 30_000);
});

