import { existsSync, readdirSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { contentOnDisk, tagsOnDisk } from '../../helpers/cache-disk.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { MediaTypes, pushImage, sha256, type PushedImage } from '../../helpers/images.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';

const cleanup = new Cleanup();
const clock = new ManualClock(Date.now());
let hub: HubFront;
let mirror: TestMirror;
let oldBig: PushedImage;
let newBig: PushedImage;
let slow: PushedImage;
const ACCEPT = [MediaTypes.ociManifest, MediaTypes.dockerManifest].join(', ');

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  oldBig = await pushImage(registry.url, 'library/big', 'old', { layers: [24 * 1024 * 1024], format: 'oci', seed: 'big-old' });
  newBig = await pushImage(registry.url, 'library/big', 'new', { layers: [1000], format: 'oci', seed: 'big-new' });
  slow = await pushImage(registry.url, 'library/slow', '1', { layers: [3 * 1024 * 1024], format: 'oci', seed: 'slow' });
  hub = cleanup.add(await startHubFront({ target: registry.url }));
  const storage = cleanup.add(await makeTempDir('mirrorgate-cache-'));
  mirror = cleanup.add(
    await startMirror({
      upstreams: { 'docker.io': hub.url },
      clock,
      storage,
      config: {
        mirror: {
          storage: { path: storage.path },
          cache: { gcInterval: 0, staleTempAge: '0s', unreferencedGrace: '0s' },
          retention: [
            { repository: 'library/big', keepLast: 1 },
            { repository: 'library/slow', keepLast: 0 },
          ],
        },
      },
    }),
  );
}, 120_000);

afterAll(() => cleanup.run());

async function getManifest(repo: string, tag: string): Promise<void> {
  const res = await request(`${mirror.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: ACCEPT } });
  expect(res.statusCode).toBe(200);
  await res.body.dump();
}

async function readAll(body: NodeJS.ReadableStream, first: Buffer[] = []): Promise<Buffer> {
  const chunks = [...first];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('eviction while clients read and downloads run', () => {
  it('a client streaming a blob while it is evicted still gets every byte', async () => {
    const layer = oldBig.layers[0]!;
    await getManifest('library/big', 'old');
    const warm = await request(`${mirror.url}/v2/library/big/blobs/${layer.digest}`);
    expect(sha256(await readAll(warm.body))).toBe(layer.digest);
    clock.advance(60_000);
    await getManifest('library/big', 'new');

    // Start reading the big layer, take one chunk, and stop reading: the server is mid-file.
    const res = await request(`${mirror.url}/v2/library/big/blobs/${layer.digest}`, { highWaterMark: 64 * 1024 });
    expect(res.statusCode).toBe(200);
    await once(res.body, 'readable');
    const first = res.body.read() as Buffer;
    expect(first.length).toBeLessThan(layer.size);

    const result = await mirror.server.cache.runPass({ trigger: 'test' });
    expect(result.applied!.units.map((u) => u.root.tag)).toEqual(['old']);
    expect(contentOnDisk(mirror.storage.path, 'blobs').has(layer.digest)).toBe(false);
    expect([...tagsOnDisk(mirror.storage.path, { upstream: 'docker.io', path: 'library/big' }).keys()]).toEqual(['new']);

    const body = await readAll(res.body, [first]);
    expect(body.length).toBe(layer.size);
    expect(sha256(body)).toBe(layer.digest);
    // The new image is whole.
    expect(contentOnDisk(mirror.storage.path, 'manifests').has(newBig.digest)).toBe(true);
  }, 60_000);

  it('leaves a running download alone (its temp file and its digest), and collects it once it is unreferenced', async () => {
    const layer = slow.layers[0]!;
    await getManifest('library/slow', '1');
    hub.faults.push({ match: { kind: 'blob', method: 'GET', pathIncludes: layer.digest }, action: { type: 'stall', ms: 1500 } });
    // The response headers wait for the first byte, so do not wait for them: wait for the download's temp file.
    const pending = request(`${mirror.url}/v2/library/slow/blobs/${layer.digest}`);
    const tmp = path.join(mirror.storage.path, 'tmp');
    let parts: string[] = [];
    for (let i = 0; i < 200 && parts.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
      parts = existsSync(tmp) ? readdirSync(tmp).filter((n) => n.endsWith('.part')) : [];
    }
    expect(parts).toHaveLength(1);
    expect(mirror.server.blobs.isFetching(layer.digest)).toBe(true);

    // keepLast 0 removes the tag while its blob is still downloading; staleTempAge 0 makes every idle temp file stale.
    const during = await mirror.server.cache.runPass({ trigger: 'test' });
    expect(during.applied!.units.map((u) => u.root.tag)).toEqual(['1']);
    expect(during.temp.map((t) => `${t.id}.part`)).not.toContain(parts[0]);
    expect(existsSync(path.join(tmp, parts[0]!))).toBe(true);

    const res = await pending;
    expect(res.statusCode).toBe(200);
    const body = await readAll(res.body);
    expect(sha256(body)).toBe(layer.digest);
    // Committed after the pass, referenced by nothing now: the next pass collects it.
    for (let i = 0; i < 100 && mirror.server.blobs.isFetching(layer.digest); i++) await new Promise((r) => setTimeout(r, 20));
    expect(contentOnDisk(mirror.storage.path, 'blobs').has(layer.digest)).toBe(true);
    const after = await mirror.server.cache.runPass({ trigger: 'test' });
    expect(after.plan.content.map((c) => [c.entry.digest, c.reason])).toContainEqual([layer.digest, 'unreferenced']);
    expect(contentOnDisk(mirror.storage.path, 'blobs').has(layer.digest)).toBe(false);
  }, 60_000);
});
