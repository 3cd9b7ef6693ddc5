import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { MediaTypes, pushImage, sha256, type PushedImage } from '../../helpers/images.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { runCliToEnd } from '../../helpers/cli-process.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';

/**
 * Two mirrors on one storage directory, each with its own storage objects (as two processes, or two
 * replicas on one volume, have), and one Redis: a herd on a cold blob costs one upstream download across
 * both; Redis flushed mid-pull loses nothing; Redis stopped leaves both serving.
 */
const cleanup = new Cleanup();
let hub: HubFront;
let redis: TestRedis;
let mirrors: TestMirror[];
let storagePath: string;
const images: Record<string, PushedImage> = {};
const ACCEPT = [MediaTypes.ociManifest, MediaTypes.dockerManifest].join(', ');

/** Blob requests the upstream answered with a token (its 401 challenges left out). */
function answered(method: 'GET' | 'HEAD', digest?: string): number {
  return hub.requests.filter((r) => r.kind === 'blob' && r.method === method && r.authorized && (!digest || r.path.includes(digest))).length;
}

async function redisUp(m: TestMirror): Promise<number> {
  const metric = await m.server.metrics.registry.getSingleMetric('mirrorgate_redis_up')!.get();
  return metric.values[0]!.value;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** GETs a blob through a mirror; resolves with the status and the digest of the body. */
async function blob(m: TestMirror, repo: string, digest: string): Promise<{ status: number; digest: string }> {
  const res = await request(`${m.url}/v2/${repo}/blobs/${digest}`);
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(c as Buffer);
  return { status: res.statusCode, digest: sha256(Buffer.concat(chunks)) };
}

/** Pulls a whole image through a mirror (manifest by tag, config, layers) and checks every digest. */
async function pull(m: TestMirror, image: PushedImage): Promise<void> {
  const res = await request(`${m.url}/v2/${image.repo}/manifests/${image.tag}`, { headers: { accept: ACCEPT } });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  expect(res.statusCode).toBe(200);
  expect(sha256(bytes)).toBe(image.digest);
  for (const b of [image.config, ...image.layers]) expect(await blob(m, image.repo, b.digest)).toEqual({ status: 200, digest: b.digest });
}

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  for (const name of ['herd', 'flush', 'down', 'again']) {
    images[name] = await pushImage(registry.url, `library/${name}`, 'v1', { layers: [2 * 1024 * 1024, 300_000], format: 'oci', seed: `replicas-${name}` });
  }
  hub = cleanup.add(await startHubFront({ target: registry.url }));
  redis = cleanup.add(await startRedis());
  const storage = cleanup.add(await makeTempDir('mirrorgate-cache-'));
  storagePath = storage.path;
  const config = {
    mirror: {
      storage: { path: storage.path },
      cache: { gcInterval: 0 },
      redis: { url: redis.url, keyPrefix: 'replicas:', commandTimeout: '300ms', connectTimeout: '1s' },
    },
  };
  mirrors = [];
  for (let i = 0; i < 2; i++) mirrors.push(cleanup.add(await startMirror({ upstreams: { 'docker.io': hub.url }, storage, config })));
  for (const m of mirrors) expect(await redisUp(m)).toBe(1);
}, 120_000);

afterAll(() => cleanup.run());

beforeEach(() => {
  hub.reset();
  hub.faults.length = 0;
});

describe('two mirrors on one storage and one Redis', () => {
  it('a herd of 30 clients over both mirrors on a cold blob: one upstream GET', async () => {
    const layer = images.herd!.layers[0]!;
    // The upstream takes its time, so every client arrives while the one download runs.
    hub.faults.push({ match: { kind: 'blob', method: 'GET', pathIncludes: layer.digest }, action: { type: 'delay', ms: 800 } });
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => blob(mirrors[i % 2]!, 'library/herd', layer.digest)));
    for (const r of results) expect(r).toEqual({ status: 200, digest: layer.digest });
    expect(answered('GET', layer.digest)).toBe(1);
  }, 60_000);

  it('FLUSHALL in the middle of pulls: every pull completes, and everything is pullable after, from storage', async () => {
    const image = images.flush!;
    hub.faults.push({ match: { kind: 'blob', method: 'GET' }, times: Infinity, action: { type: 'delay', ms: 150 } });
    const pulls = mirrors.flatMap((m) => [pull(m, image), pull(m, image)]);
    for (let i = 0; i < 5; i++) {
      await sleep(60);
      await redis.flushAll();
    }
    await Promise.all(pulls);
    // A flush drops the leases, so a blob may have been downloaded by both mirrors; never more.
    for (const b of [image.config, ...image.layers]) expect(answered('GET', b.digest)).toBeLessThanOrEqual(2);

    await redis.flushAll();
    hub.reset();
    for (const m of mirrors) await pull(m, image);
    // Tags, links and content all came from storage: nothing asked upstream again.
    expect(hub.requests.filter((r) => r.authorized && (r.kind === 'manifest' || r.kind === 'blob'))).toEqual([]);
    for (const m of mirrors) expect(await redisUp(m)).toBe(1);
  }, 60_000);

  it('Redis stopped: both mirrors still serve, cold blobs at most once each; restarted: one download per cold blob again', async () => {
    await redis.stop();
    try {
      const image = images.down!;
      hub.faults.push({ match: { kind: 'blob', method: 'GET' }, times: Infinity, action: { type: 'delay', ms: 300 } });
      await Promise.all(mirrors.flatMap((m) => [pull(m, image), pull(m, image)]));
      for (const b of [image.config, ...image.layers]) expect(answered('GET', b.digest)).toBeLessThanOrEqual(2);
      for (const m of mirrors) expect(await redisUp(m)).toBe(0);
      for (const m of mirrors) await pull(m, images.flush!);
    } finally {
      await redis.start();
    }
    for (const m of mirrors) await until('Redis up in both mirrors', async () => (await redisUp(m)) === 1);
    hub.reset();
    const layer = images.again!.layers[0]!;
    hub.faults.push({ match: { kind: 'blob', method: 'GET', pathIncludes: layer.digest }, action: { type: 'delay', ms: 800 } });
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => blob(mirrors[i % 2]!, 'library/again', layer.digest)));
    for (const r of results) expect(r).toEqual({ status: 200, digest: layer.digest });
    expect(answered('GET', layer.digest)).toBe(1);
  }, 60_000);
});

describe('mirrorgate gc with Redis configured', () => {
  it('what a pass removes from storage is gone from Redis too', async () => {
    const key = 'replicas:c:tags:docker.io/library/flush';
    for (const m of mirrors) await pull(m, images.flush!);
    expect(await redis.command('HEXISTS', key, 'v1')).toBe(1);
    const dir = cleanup.add(await makeTempDir('mirrorgate-gc-config-'));
    const file = path.join(dir.path, 'config.json');
    const config = {
      upstreams: { 'docker.io': { url: hub.url } },
      mirror: { storage: { path: storagePath }, redis: { url: redis.url, keyPrefix: 'replicas:' }, retention: [{ repository: 'library/flush', keepLast: 0 }] },
    };
    await writeFile(file, JSON.stringify(config));
    // --force: the mirrors of this test run in this process and hold the storage.
    const run = await runCliToEnd(['gc', '--config', file, '--force', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const pass = JSON.parse(run.stdout) as { remove: { name: string; reason: string }[] };
    expect(pass.remove.map((r) => r.reason)).toEqual(['retention']);
    expect(await redis.command('HEXISTS', key, 'v1')).toBe(0);
  }, 60_000);
});
