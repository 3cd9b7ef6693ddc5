import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { cacheBytes, contentOnDisk, manifestRefs, tagsOnDisk } from '../../helpers/cache-disk.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { buildLayer, MediaTypes, pushBlob, pushManifest, sha256, type BlobRef } from '../../helpers/images.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { readDirImage, skopeoCopy } from '../../helpers/skopeo.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';

const cleanup = new Cleanup();
const MiB = 1024 * 1024;
const CAP = 5 * MiB;
let hub: HubFront;
let registryUrl: string;
let base: BlobRef;
const images: { tag: string; digest: string; blobs: string[]; size: number }[] = [];

/** An image whose first layer is a base layer shared by every image, then `own` bytes of its own. */
async function pushOnBase(tag: string, own: number[]): Promise<void> {
  const layers = [base];
  for (const [i, size] of own.entries()) layers.push(await pushBlob(registryUrl, 'library/app', buildLayer(`${tag}/own${i}`, size).bytes));
  const config = await pushBlob(registryUrl, 'library/app', Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', tag, rootfs: { type: 'layers', diff_ids: [] } })));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, ...config },
      layers: layers.map((l) => ({ mediaType: MediaTypes.ociLayer, ...l })),
    }),
  );
  const digest = await pushManifest(registryUrl, 'library/app', tag, manifest, MediaTypes.ociManifest);
  images.push({ tag, digest, blobs: [config.digest, ...layers.map((l) => l.digest)], size: manifest.length + config.size + layers.reduce((a, l) => a + l.size, 0) });
}

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  registryUrl = registry.url;
  base = await pushBlob(registryUrl, 'library/app', buildLayer('base', 300_000).bytes);
  for (let i = 0; i < 10; i++) await pushOnBase(`v${i}`, [500_000, 400_000]);
  hub = cleanup.add(await startHubFront({ target: registryUrl }));
}, 120_000);

afterAll(() => cleanup.run());

async function pull(mirror: TestMirror, ref: string) {
  const out = cleanup.add(await makeTempDir('mirrorgate-pull-'));
  await skopeoCopy(`docker://${mirror.host}/${ref}`, `dir:${out.path}`, { throwOnError: true });
  const image = await readDirImage(out.path);
  await out.cleanup();
  return image;
}

describe('size cap with LRU eviction', () => {
  it('stays under its cap through pulls twice its size, keeping the most recent complete images', async () => {
    const clock = new ManualClock(Date.now());
    const storage = cleanup.add(await makeTempDir('mirrorgate-cache-'));
    const mirror = cleanup.add(
      await startMirror({
        upstreams: { 'docker.io': hub.url },
        clock,
        storage,
        config: { mirror: { storage: { path: storage.path, maxSize: CAP }, cache: { highWater: 0.9, lowWater: 0.7, gcInterval: 0 } } },
      }),
    );
    const root = mirror.storage.path;
    await mirror.server.cache.runPass({ trigger: 'test' });
    // The true peak: the cache's own running estimate right after each piece of content is stored.
    let peak = 0;
    mirror.server.cache.tracker.onStored(() => {
      peak = Math.max(peak, mirror.server.cache.sizeEstimate ?? 0);
    });
    const sizes: number[] = [];
    let pulledBytes = 0;
    for (const img of images) {
      clock.advance(60_000);
      const got = await pull(mirror, `library/app:${img.tag}`);
      expect(got.manifestDigest).toBe(img.digest);
      pulledBytes += img.size;
      await mirror.server.cache.runPass({ trigger: 'test' }); // let any triggered pass finish
      sizes.push(cacheBytes(root));
    }
    console.log(
      `cap ${CAP} B; image sizes ${images.map((i) => i.size).join(', ')} B; ${pulledBytes} B pulled in total; ` +
        `cache after each pull: ${sizes.join(', ')} B; peak estimate ${peak} B`,
    );
    expect(pulledBytes).toBeGreaterThan(2 * CAP);
    for (const s of sizes) expect(s).toBeLessThanOrEqual(CAP);
    expect(peak).toBeLessThanOrEqual(CAP);

    // What remains: the most recent images, each complete; nothing else on disk.
    const tags = tagsOnDisk(root, { upstream: 'docker.io', path: 'library/app' });
    const kept = images.filter((i) => tags.has(i.tag));
    expect(kept.length).toBeGreaterThanOrEqual(2);
    expect(kept.map((i) => i.tag)).toEqual(images.slice(-kept.length).map((i) => i.tag));
    const blobs = contentOnDisk(root, 'blobs');
    const manifests = contentOnDisk(root, 'manifests');
    const needed = new Set<string>();
    for (const img of kept) {
      expect(manifests.has(img.digest)).toBe(true);
      expect(manifestRefs(root, img.digest).sort()).toEqual([...img.blobs].sort());
      for (const b of img.blobs) {
        expect(blobs.has(b), `${img.tag} blob ${b}`).toBe(true);
        needed.add(b);
      }
    }
    expect([...blobs.keys()].sort()).toEqual([...needed].sort());
    expect([...manifests.keys()].sort()).toEqual(kept.map((i) => i.digest).sort());
    expect(blobs.has(base.digest)).toBe(true);

    // A kept image is served whole from the cache; an evicted one comes back from upstream.
    hub.reset();
    await pull(mirror, `library/app@${kept[0]!.digest}`);
    expect(hub.count({ kind: 'blob' })).toBe(0);
    const evicted = images[0]!;
    expect(tags.has(evicted.tag)).toBe(false);
    const again = await pull(mirror, `library/app:${evicted.tag}`);
    expect(again.manifestDigest).toBe(evicted.digest);

    const metrics = await mirror.server.metrics.registry.metrics();
    expect(metrics).toMatch(/mirrorgate_cache_evictions_total\{reason="size"\} [1-9]/);
    expect(metrics).toMatch(/mirrorgate_cache_freed_bytes_total\{reason="size"\} [1-9]/);
    expect(metrics).toMatch(/mirrorgate_cache_size_bytes [1-9]/);
  }, 120_000);
});
