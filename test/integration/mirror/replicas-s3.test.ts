import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startCephRgw, type CephRgw } from '../../helpers/ceph-rgw.js';
import { runCli, runCliToEnd, type CliProcess } from '../../helpers/cli-process.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { generateBytes, MediaTypes, pushImage, sha256, type PushedImage } from '../../helpers/images.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { registryClient, type Call, type RegistryAnswer } from '../../helpers/registry-client.js';
import { createBucket, listKeys, rgwClient } from '../../helpers/s3-bucket.js';
import { startS3FaultProxy, type S3FaultProxy } from '../../helpers/s3-fault-proxy.js';
import { readDirImage, skopeoCopy } from '../../helpers/skopeo.js';
import { Cleanup, freePort, makeTempDir } from '../../helpers/tmp.js';

/**
 * Three `mirrorgate mirror` processes on one Ceph RGW bucket and one redis-server, each with a metadata
 * directory of its own (as replicas with an emptyDir have): one upstream GET for a herd, pushes through one
 * replica pulled through the others, replicas killed mid-download and mid-push, Redis flushed, restarted
 * and stopped, the gateway restarted, SlowDown answers, and a cache pass with a size cap on the bucket.
 */
const BUCKET = 'replicas';
const PREFIX = 'r/';
const MiB = 1024 * 1024;
const OCTET = { 'content-type': 'application/octet-stream' };
const ACCEPT = [MediaTypes.ociManifest, MediaTypes.dockerManifest].join(', ');

const cleanup = new Cleanup();
let rgw: CephRgw;
let s3: S3Client;
let redis: TestRedis;
let hub: HubFront;
/** In front of the gateway for replica 2 only: it answers chosen requests with 503 SlowDown. */
let slow: S3FaultProxy;
const images: Record<string, PushedImage> = {};

interface Replica {
  index: number;
  url: string;
  port: number;
  config: string;
  cli: CliProcess;
  call: Call;
}
const replicas: Replica[] = [];
/** Pushed through replica 0 by the second test; every later test checks it is still whole everywhere. */
let hostedApp: Awaited<ReturnType<typeof pushHosted>> | undefined;

/** Replica 1 answers blob GETs with redirects; replica 2 reaches the gateway through the SlowDown proxy. */
async function configFor(index: number): Promise<{ file: string; port: number }> {
  const dir = cleanup.add(await makeTempDir(`mirrorgate-replica-${index}-`));
  const port = await freePort();
  const config = {
    upstreams: { 'docker.io': { url: hub.url } },
    mirror: {
      listen: `127.0.0.1:${port}`,
      storage: {
        path: path.join(dir.path, 'data'),
        s3: {
          endpoint: index === 2 ? slow.url : rgw.endpoint,
          region: rgw.region,
          bucket: BUCKET,
          prefix: PREFIX,
          forcePathStyle: true,
          accessKeyId: { value: rgw.accessKeyId },
          secretAccessKey: { value: rgw.secretAccessKey },
          partSize: '5MiB',
          redirect: index === 1,
        },
      },
      cache: { gcInterval: 0 },
      redis: { url: redis.url, keyPrefix: 'rs:', commandTimeout: '300ms', connectTimeout: '1s' },
      hosted: { repositories: ['team/**'] },
    },
  };
  const file = path.join(dir.path, 'config.json');
  await writeFile(file, JSON.stringify(config));
  return { file, port };
}

async function startReplica(index: number): Promise<Replica> {
  const { file, port } = await configFor(index);
  const cli = runCli(['mirror', '--config', file], cleanup, { MIRRORGATE_LOG_LEVEL: 'info' });
  await cli.waitForOutput(/listening on/, 60_000);
  const url = `http://127.0.0.1:${port}`;
  return { index, url, port, config: file, cli, call: registryClient(url) };
}

/** Kills a replica with SIGKILL and starts it again on the same configuration. */
async function killReplica(r: Replica): Promise<void> {
  r.cli.child.kill('SIGKILL');
  expect(await r.cli.exited).toBeNull();
}
async function restartReplica(r: Replica): Promise<void> {
  r.cli = runCli(['mirror', '--config', r.config], cleanup, { MIRRORGATE_LOG_LEVEL: 'info' });
  await r.cli.waitForOutput(/listening on/, 60_000);
}

/** Blob requests the upstream answered with a token (its 401 challenges left out). */
function answered(method: 'GET' | 'HEAD', digest?: string): number {
  return hub.requests.filter((req) => req.kind === 'blob' && req.method === method && req.authorized && (!digest || req.path.includes(digest))).length;
}

/** GETs a blob, following a redirect as clients do; the status and the digest of what came. */
async function blob(r: Replica, repo: string, digest: string): Promise<{ status: number; digest: string }> {
  let res = await request(`${r.url}/v2/${repo}/blobs/${digest}`);
  if (res.statusCode === 307) {
    await res.body.dump();
    res = await request(String(res.headers.location));
  }
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(c as Buffer);
  return { status: res.statusCode, digest: sha256(Buffer.concat(chunks)) };
}

/** A whole image through a replica by tag or digest (manifest, config, layers), every digest checked. */
async function pull(r: Replica, repo: string, reference: string, image: { digest: string; config: { digest: string }; layers: { digest: string }[] }): Promise<void> {
  const res = await request(`${r.url}/v2/${repo}/manifests/${reference}`, { headers: { accept: ACCEPT } });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  expect(res.statusCode, `${repo}:${reference} through replica ${r.index}: ${bytes.toString().slice(0, 300)}`).toBe(200);
  expect(sha256(bytes)).toBe(image.digest);
  for (const b of [image.config, ...image.layers]) expect(await blob(r, repo, b.digest)).toEqual({ status: 200, digest: b.digest });
}

const location = (a: RegistryAnswer): string => a.header('location')!;

/** Pushes an image (config, layers, manifest) into a hosted repository through one replica. */
async function pushHosted(r: Replica, repo: string, tag: string, seed: string, layerSizes: number[]) {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layers = layerSizes.map((size, i) => generateBytes(`${seed}-${i}`, size));
  const descriptors = [];
  for (const bytes of [config, ...layers]) {
    const res = await r.call('POST', `/v2/${repo}/blobs/uploads/`, { query: { digest: sha256(bytes) }, headers: OCTET, body: bytes });
    expect(res.status).toBe(201);
    descriptors.push({ digest: sha256(bytes), size: bytes.length });
  }
  const [c, ...ls] = descriptors;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...c },
      layers: ls.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })),
    }),
  );
  const put = await r.call('PUT', `/v2/${repo}/manifests/${tag}`, { headers: { 'content-type': MediaTypes.ociManifest }, body: manifest });
  expect(put.status).toBe(201);
  return { digest: sha256(manifest), config: c!, layers: ls };
}

async function redisUp(r: Replica): Promise<number> {
  const res = await request(`${r.url}/metrics`);
  const text = await res.body.text();
  return Number(/^mirrorgate_redis_up (\d)/m.exec(text)?.[1]);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const blobKey = (digest: string): string => `${PREFIX}blobs/${digest.replace(':', '/')}`;

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  const [gateway, server] = await Promise.all([startCephRgw(), startRedis()]);
  rgw = cleanup.add(gateway);
  redis = cleanup.add(server);
  s3 = rgwClient(rgw);
  cleanup.add(() => s3.destroy());
  await createBucket(s3, BUCKET);
  for (const name of ['herd', 'killed', 'flush', 'down', 'gateway', 'slow', 'capped']) {
    const big = name === 'killed' ? 24 * MiB : 2 * MiB;
    images[name] = await pushImage(registry.url, `library/${name}`, 'v1', { layers: [big, 300_000], format: 'oci', seed: `replicas-s3-${name}` });
  }
  hub = cleanup.add(await startHubFront({ target: registry.url }));
  slow = cleanup.add(await startS3FaultProxy(rgw.endpoint));
  replicas.push(...(await Promise.all([0, 1, 2].map(startReplica))));
}, 120_000);

afterAll(() => cleanup.run());

beforeEach(() => {
  hub.reset();
  hub.faults.length = 0;
});

/** A replica that died by itself is a bug in the mirror: say so with what it printed, not as a later refused connection. */
afterEach(() => {
  for (const r of replicas) {
    const { exitCode, signalCode } = r.cli.child;
    if (exitCode !== null || signalCode !== null) throw new Error(`replica ${r.index} exited (${exitCode ?? signalCode}):\n${r.cli.output().slice(-8000)}`);
  }
});

describe('three replicas on one bucket and one Redis', () => {
  it('a herd of 30 clients spread over the replicas on a cold blob: one upstream GET, every client gets the blob', async () => {
    const layer = images.herd!.layers[0]!;
    hub.faults.push({ match: { kind: 'blob', method: 'GET', pathIncludes: layer.digest }, action: { type: 'delay', ms: 800 } });
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => blob(replicas[i % 3]!, 'library/herd', layer.digest)));
    for (const r of results) expect(r).toEqual({ status: 200, digest: layer.digest });
    expect(answered('GET', layer.digest)).toBe(1);
  }, 60_000);

  it('an image pushed through one replica is pulled through the others by tag and digest, also by skopeo through a redirecting replica, and after FLUSHALL', async () => {
    const [a, b, c] = replicas as [Replica, Replica, Replica];
    const pushed = await pushHosted(a, 'team/app', 'v1', 'hosted-app', [6 * MiB, 40_000]);
    hostedApp = pushed;
    for (const r of [b, c]) {
      await pull(r, 'team/app', 'v1', pushed);
      await pull(r, 'team/app', pushed.digest, pushed);
    }
    expect((await c.call('GET', '/v2/team/app/tags/list')).json()).toEqual({ name: 'team/app', tags: ['v1'] });
    const out = cleanup.add(await makeTempDir('mirrorgate-pull-'));
    await skopeoCopy(`docker://127.0.0.1:${b.port}/team/app:v1`, `dir:${out.path}`, { throwOnError: true });
    expect((await readDirImage(out.path)).manifestDigest).toBe(pushed.digest);

    // Redis holds copies only: with it emptied, every replica reads the records from the bucket.
    await redis.flushAll();
    for (const r of [c, b, a]) await pull(r, 'team/app', 'v1', pushed);
    expect((await b.call('GET', '/v2/team/app/tags/list')).json()).toEqual({ name: 'team/app', tags: ['v1'] });
    expect(hub.requests.filter((req) => req.authorized)).toEqual([]);
  }, 60_000);

  it('kill -9 of a replica mid-download and mid-push: the others finish the download, the push resumes on another replica, nothing partial is visible', async () => {
    const [a, b, c] = replicas as [Replica, Replica, Replica];
    const layer = images.killed!.layers[0]!;
    // The upstream sends the headers, then waits: the download is running on replica 0 when it dies.
    hub.faults.push({ match: { kind: 'blob', method: 'GET', pathIncludes: layer.digest }, action: { type: 'stall', ms: 5000 } });
    // Its client's answer is cut by the kill: handled from the start, so the cut is never an unhandled rejection.
    const onA = blob(a, 'library/killed', layer.digest).catch(() => ({ status: 0, digest: '' }));
    await until('the download to start', async () => answered('GET', layer.digest) === 1);
    const onB = blob(b, 'library/killed', layer.digest);

    // A chunked push on replica 0: one PATCH done, the next cut off by the kill.
    const bytes = generateBytes('killed-push', 13 * MiB + 7);
    const digest = sha256(bytes);
    const loc = location(await a.call('POST', '/v2/team/killed/blobs/uploads/'));
    const first = await a.call('PATCH', loc, { headers: { ...OCTET, 'content-range': `0-${6 * MiB - 1}` }, body: bytes.subarray(0, 6 * MiB) });
    expect(first.status).toBe(202);
    const socket = net.connect({ host: '127.0.0.1', port: a.port });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`PATCH ${loc} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Range: ${6 * MiB}-${bytes.length - 1}\r\nContent-Length: ${bytes.length - 6 * MiB}\r\n\r\n`);
    socket.write(bytes.subarray(6 * MiB, 11 * MiB));
    await sleep(300);

    await killReplica(a);
    socket.destroy();
    // The client of the dead replica got a cut answer, never a whole wrong one.
    expect((await onA).digest).not.toBe(layer.digest);
    // Nothing partial in the bucket or through any replica: neither the blob being downloaded nor the push.
    expect(await listKeys(s3, BUCKET, blobKey(layer.digest))).toEqual([]);
    expect((await b.call('GET', `/v2/team/killed/blobs/${digest}`)).status).toBe(404);

    // The waiting client on replica 1 gets the blob once the dead replica's lease runs out; its retry too.
    expect(await onB).toEqual({ status: 200, digest: layer.digest });
    expect(await blob(c, 'library/killed', layer.digest)).toEqual({ status: 200, digest: layer.digest });
    expect(answered('GET', layer.digest)).toBe(2);

    // The push goes on through another replica, from where that replica says the upload stands.
    const status = await c.call('GET', loc);
    expect(status.status).toBe(204);
    const offset = Number(status.header('range')!.split('-')[1]) + 1;
    expect(offset).toBeGreaterThanOrEqual(5 * MiB);
    expect(offset).toBeLessThanOrEqual(11 * MiB);
    const rest = await c.call('PATCH', location(status), { headers: { ...OCTET, 'content-range': `${offset}-${bytes.length - 1}` }, body: bytes.subarray(offset) });
    expect(rest.status).toBe(202);
    const done = await b.call('PUT', location(rest), { query: { digest }, headers: OCTET });
    expect(done.status, done.body.toString()).toBe(201);
    expect(sha256((await c.call('GET', `/v2/team/killed/blobs/${digest}`)).body)).toBe(digest);
    await restartReplica(a);
    expect(sha256((await a.call('GET', `/v2/team/killed/blobs/${digest}`)).body)).toBe(digest);
  }, 90_000);

  it('FLUSHALL and a Redis restart in the middle of pulls and a push: everything completes, and everything is pullable after', async () => {
    const image = images.flush!;
    hub.faults.push({ match: { kind: 'blob', method: 'GET' }, times: Infinity, action: { type: 'delay', ms: 150 } });
    const work = [...replicas.map((r) => pull(r, 'library/flush', 'v1', image)), pushHosted(replicas[1]!, 'team/flush', 'v1', 'flush-push', [3 * MiB])];
    await sleep(100);
    await redis.flushAll();
    await sleep(100);
    await redis.stop();
    await sleep(300);
    await redis.start();
    const [, , , pushed] = (await Promise.all(work)) as [void, void, void, Awaited<ReturnType<typeof pushHosted>>];
    // Leases went with Redis, so a blob may have been downloaded once per replica; never more.
    for (const b of [image.config, ...image.layers]) expect(answered('GET', b.digest)).toBeLessThanOrEqual(3);
    for (const r of replicas) await until(`Redis up in replica ${r.index}`, async () => (await redisUp(r)) === 1);
    await redis.flushAll();
    hub.reset();
    for (const r of replicas) {
      await pull(r, 'library/flush', 'v1', image);
      await pull(r, 'team/flush', 'v1', pushed);
      await pull(r, 'team/app', 'v1', hostedApp!);
    }
    expect(hub.requests.filter((req) => req.authorized && (req.kind === 'blob' || req.kind === 'manifest'))).toEqual([]);
  }, 60_000);

  it('Redis stopped: every replica serves and pushes, degraded (a cold blob at most once per replica); back: one download per cold blob again', async () => {
    await redis.stop();
    try {
      const image = images.down!;
      hub.faults.push({ match: { kind: 'blob', method: 'GET' }, times: Infinity, action: { type: 'delay', ms: 300 } });
      await Promise.all(replicas.map((r) => pull(r, 'library/down', 'v1', image)));
      for (const b of [image.config, ...image.layers]) expect(answered('GET', b.digest)).toBeLessThanOrEqual(3);
      for (const r of replicas) expect(await redisUp(r)).toBe(0);
      const pushed = await pushHosted(replicas[2]!, 'team/down', 'v1', 'down-push', [1 * MiB]);
      for (const r of replicas) await pull(r, 'team/down', 'v1', pushed);
    } finally {
      await redis.start();
    }
    for (const r of replicas) await until(`Redis up in replica ${r.index}`, async () => (await redisUp(r)) === 1);
    hub.reset();
    hub.faults.length = 0;
    const layer = images.gateway!.layers[1]!;
    hub.faults.push({ match: { kind: 'blob', method: 'GET', pathIncludes: layer.digest }, action: { type: 'delay', ms: 800 } });
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => blob(replicas[i % 3]!, 'library/gateway', layer.digest)));
    for (const r of results) expect(r).toEqual({ status: 200, digest: layer.digest });
    expect(answered('GET', layer.digest)).toBe(1);
  }, 60_000);

  it('the gateway restarted: requests while it is down fail cleanly with 503 (never wrong bytes), and everything works once it is back', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const image = images.gateway!;
    await pull(a, 'library/gateway', 'v1', image);
    // The requests start once the gateway is gone: one in flight when it dies may be cut, which says nothing.
    const during = await rgw.restartGateway(async () => {
      const answers = await Promise.all([a, b].map((r) => r.call('GET', `/v2/library/gateway/blobs/${image.layers[0]!.digest}`)));
      await sleep(2000);
      return answers;
    });
    for (const res of during) {
      if (res.status === 200) expect(sha256(res.body)).toBe(image.layers[0]!.digest);
      else {
        expect(res.status).toBe(503);
        expect(res.code()).toBe('UNAVAILABLE');
      }
    }
    for (const r of replicas) await pull(r, 'library/gateway', 'v1', image);
  }, 90_000);

  it('503 SlowDown from the store is retried with backoff: the client sees a normal answer', async () => {
    const c = replicas[2]!;
    const image = images.slow!;
    await pull(replicas[0]!, 'library/slow', 'v1', image);
    const layer = image.layers[0]!;
    const before = slow.requests.length;
    slow.slowDown({ method: 'GET', pathIncludes: layer.digest.slice(7) }, { times: 2 });
    expect(await blob(c, 'library/slow', layer.digest)).toEqual({ status: 200, digest: layer.digest });
    const seen = slow.requests.slice(before).filter((r) => r.method === 'GET' && r.path.includes(layer.digest.slice(7)));
    expect(seen.map((r) => r.status)).toEqual([503, 503, 200]);
  }, 30_000);
});

describe('the cache lifecycle on the bucket', () => {
  it('a gc pass with a size cap evicts least recently used images from the bucket; retention of a hosted repository removes its old tags for every replica', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const capped = images.capped!;
    await pull(a, 'library/capped', 'v1', capped);
    // Two more tags in a hosted repository, the oldest to go by retention.
    await pushHosted(a, 'team/retained', 'old', 'retained-old', [100_000]);
    await sleep(20);
    const kept = await pushHosted(a, 'team/retained', 'new', 'retained-new', [100_000]);
    const dir = cleanup.add(await makeTempDir('mirrorgate-gc-'));
    const file = path.join(dir.path, 'config.json');
    const config = JSON.parse(await readFile(a.config, 'utf8')) as { mirror: Record<string, unknown> };
    config.mirror.storage = { ...(config.mirror.storage as object), maxSize: '4MiB' };
    config.mirror.cache = { gcInterval: 0, highWater: 0.5, lowWater: 0.4, unreferencedGrace: '1h' };
    config.mirror.retention = [{ upstream: 'hosted', repository: 'team/retained', keepLast: 1 }];
    await writeFile(file, JSON.stringify(config));
    // --force: the replicas hold the bucket.
    const run = await runCliToEnd(['gc', '--config', file, '--force', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const pass = JSON.parse(run.stdout) as { remove: { name: string; reason: string }[]; content: { kind: string; digest: string; reason: string }[] };
    expect(pass.remove.filter((r) => r.reason === 'retention').map((r) => r.name)).toEqual([expect.stringContaining('team/retained:old')]);
    // The blobs fetched alone (the herd's) are unreferenced, kept for the grace period, and count toward the
    // cap: every proxied image goes, least recently used first.
    const bySize = pass.remove.filter((r) => r.reason === 'size').map((r) => r.name);
    expect(bySize).toEqual(expect.arrayContaining(['docker.io/library/flush:v1', 'docker.io/library/capped:v1']));
    expect(bySize.every((n) => n.startsWith('docker.io/'))).toBe(true);
    const evicted = pass.content.filter((c) => c.reason === 'size' && c.kind === 'blob').map((c) => blobKey(c.digest));
    expect(evicted).toContain(blobKey(capped.layers[0]!.digest));
    const left = new Set(await listKeys(s3, BUCKET, `${PREFIX}blobs/`));
    expect(evicted.filter((k) => left.has(k))).toEqual([]);
    expect(left.has(blobKey(hostedApp!.layers[0]!.digest))).toBe(true);

    expect((await b.call('GET', '/v2/team/retained/tags/list')).json()).toEqual({ name: 'team/retained', tags: ['new'] });
    await pull(b, 'team/retained', 'new', kept);
    // Hosted content is never evicted by the cap.
    await pull(b, 'team/app', 'v1', hostedApp!);
    // An evicted image comes back from the upstream on the next pull.
    await pull(b, 'library/capped', 'v1', capped);
  }, 60_000);
});
