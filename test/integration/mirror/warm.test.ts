import bcrypt from 'bcryptjs';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentOnDisk, tagsOnDisk } from '../../helpers/cache-disk.js';
import { runCliToEnd } from '../../helpers/cli-process.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { pushImage, pushMultiArch, type PushedImage, type PushedIndex } from '../../helpers/images.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { readDirImage, skopeoCopy } from '../../helpers/skopeo.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';
import type { WarmImageStatus } from '../../../src/mirror/warm/warm-keeper.js';

const cleanup = new Cleanup();
let registryUrl: string;
let hub: HubFront;
let warmApp: PushedIndex;
const others: PushedImage[] = [];

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  registryUrl = registry.url;
  warmApp = await pushMultiArch(registryUrl, 'library/warm-app', '1', { layers: [2048, 150_000], format: 'oci', seed: 'warm-app' });
  for (const tag of ['1', '2']) others.push(await pushImage(registryUrl, 'library/other', tag, { layers: [300_000], format: 'docker', seed: `other-${tag}` }));
  await pushImage(registryUrl, 'library/cli-app', '1', { layers: [4096, 50_000], format: 'oci', seed: 'cli-app' });
  hub = cleanup.add(await startHubFront({ target: registryUrl }));
}, 120_000);

afterAll(() => cleanup.run());

async function until<T>(what: string, probe: () => T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const warmState = (mirror: TestMirror, i = 0): WarmImageStatus => mirror.server.warm.status().images[i]!;

async function pull(mirror: TestMirror, ref: string, extraArgs: string[] = []) {
  const out = cleanup.add(await makeTempDir('mirrorgate-pull-'));
  await skopeoCopy(`docker://${mirror.host}/${ref}`, `dir:${out.path}`, { throwOnError: true, extraArgs });
  const image = await readDirImage(out.path);
  await out.cleanup();
  return image;
}

async function metricsText(mirror: TestMirror): Promise<string> {
  const res = await request(`${mirror.url}/metrics`);
  return res.body.text();
}

describe('images kept warm', () => {
  it('are cached before any client pull: a pull of either platform then sends nothing upstream; a size-cap pass evicts other images, not them', async () => {
    const storage = cleanup.add(await makeTempDir('mirrorgate-cache-'));
    const mirror = cleanup.add(
      await startMirror({
        upstreams: { 'docker.io': hub.url },
        storage,
        config: { mirror: { warm: { images: ['warm-app:1'] }, storage: { path: storage.path, maxSize: 900_000 }, cache: { highWater: 0.9, lowWater: 0.5, gcInterval: 0 } } },
      }),
    );
    const warm = await until('the warm image', () => (warmState(mirror).state === 'warm' ? warmState(mirror) : undefined));
    expect(warm).toMatchObject({ image: 'warm-app:1', repository: 'docker.io/library/warm-app', digest: warmApp.digest, platforms: ['linux/amd64', 'linux/arm64/v8'] });
    expect(await metricsText(mirror)).toMatch(/^mirrorgate_warm_images\{state="warm"\} 1$/m);
    const blobs = contentOnDisk(storage.path, 'blobs');
    for (const child of warmApp.manifests) for (const b of [child.config, ...child.layers]) expect(blobs.has(b.digest), b.digest).toBe(true);

    hub.reset();
    const amd64 = await pull(mirror, 'library/warm-app:1');
    const arm64 = await pull(mirror, 'library/warm-app:1', ['--override-arch', 'arm64', '--override-variant', 'v8']);
    expect(amd64.manifestDigest).toBe(warmApp.manifests[0]!.digest);
    expect(arm64.manifestDigest).toBe(warmApp.manifests[1]!.digest);
    expect(hub.requests).toEqual([]);

    // Other images, used after it: the warm image is the least recently used, and still stays.
    for (const o of others) await pull(mirror, `library/other:${o.tag}`);
    await mirror.server.cache.runPass({ trigger: 'test' });
    expect([...tagsOnDisk(storage.path, { upstream: 'docker.io', path: 'library/other' }).keys()]).toEqual([]);
    expect(tagsOnDisk(storage.path, { upstream: 'docker.io', path: 'library/warm-app' }).get('1')).toBe(warmApp.digest);
    const after = contentOnDisk(storage.path, 'blobs');
    for (const child of warmApp.manifests) for (const b of [child.config, ...child.layers]) expect(after.has(b.digest), b.digest).toBe(true);
    for (const o of others) expect(after.has(o.layers[0]!.digest)).toBe(false);
    expect(await metricsText(mirror)).toMatch(/^mirrorgate_cache_evictions_total\{reason="size"\} 2$/m);
  }, 120_000);

  it('are fetched again after the refresh interval: a tag moved upstream is followed, unchanged ones cost a HEAD', async () => {
    const first = await pushImage(registryUrl, 'library/moving', '1', { layers: [4096, 20_000], format: 'oci', seed: 'moving-1' });
    const storage = cleanup.add(await makeTempDir('mirrorgate-cache-'));
    const mirror = cleanup.add(
      await startMirror({
        upstreams: { 'docker.io': { url: hub.url, tagFreshness: '0s' } },
        storage,
        config: { mirror: { warm: { images: ['moving:1'], refreshInterval: '1s' }, storage: { path: storage.path } } },
      }),
    );
    await until('the first fetch', () => (warmState(mirror).digest === first.digest ? true : undefined));
    const moved = await pushImage(registryUrl, 'library/moving', '1', { layers: [4096, 20_000], format: 'oci', seed: 'moving-2' });
    const refreshed = await until('the moved tag', () => (warmState(mirror).digest === moved.digest && warmState(mirror).state === 'warm' ? warmState(mirror) : undefined));
    expect(refreshed.warmedAt).toBeGreaterThan(0);
    const blobs = contentOnDisk(storage.path, 'blobs');
    for (const b of [moved.config, ...moved.layers]) expect(blobs.has(b.digest), b.digest).toBe(true);

    // A refresh of a tag that did not move: one manifest HEAD, no download.
    const before = warmState(mirror).warmedAt!;
    hub.reset();
    await until('another refresh', () => (warmState(mirror).warmedAt! > before && warmState(mirror).state === 'warm' ? true : undefined));
    expect(hub.count({ kind: 'manifest', method: 'HEAD' })).toBeGreaterThan(0);
    expect(hub.count({ kind: 'manifest', method: 'GET' }) + hub.count({ kind: 'blob' })).toBe(0);
    await mirror.stop(); // its refreshes would show in the next tests' upstream counts
  }, 120_000);

  it('mirrorgate warm pulls images through a running mirror: the next pull sends nothing upstream', async () => {
    const mirror = cleanup.add(await startMirror({ upstreams: { 'docker.io': hub.url } }));
    const run = await runCliToEnd(['warm', '--mirror', mirror.url, '--platform', 'linux/amd64', 'cli-app:1']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^warmed docker\.io\/library\/cli-app:1 sha256:[0-9a-f]{64}: 1 manifest, 3 blobs, [\d.]+ KiB\n$/);
    hub.reset();
    await pull(mirror, 'library/cli-app:1');
    expect(hub.requests).toEqual([]);

    const bad = await runCliToEnd(['warm', '--mirror', mirror.url, 'cli-app:1', 'nosuch/image:1', 'not a reference']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/not a reference: invalid/);
    const missing = await runCliToEnd(['warm', '--mirror', mirror.url, 'cli-app:1', 'nosuch/image:1']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/^warmed docker\.io\/library\/cli-app:1 /);
    expect(missing.stderr).toMatch(/nosuch\/image:1: the mirror answered 404 for docker\.io\/nosuch\/image manifests\/1: MANIFEST_UNKNOWN/);
  }, 120_000);

  it('mirrorgate warm authenticates to a mirror that asks, with the password on stdin', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-warm-auth-'));
    const htpasswd = join(dir.path, 'htpasswd');
    writeFileSync(htpasswd, `ops:${bcrypt.hashSync('warm-Pa55', 4)}\n`);
    const mirror = cleanup.add(await startMirror({ upstreams: { 'docker.io': hub.url }, config: { mirror: { auth: { htpasswd } } } }));
    const refused = await runCliToEnd(['warm', '--mirror', mirror.url, 'cli-app:1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/the mirror answered 401 .*UNAUTHORIZED/);
    const run = await runCliToEnd(['warm', '--mirror', mirror.url, '--user', 'ops', '--password-stdin', 'cli-app:1'], 'warm-Pa55\n');
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^warmed docker\.io\/library\/cli-app:1 /);
  }, 60_000);
});
