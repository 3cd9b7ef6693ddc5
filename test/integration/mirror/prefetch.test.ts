import bcrypt from 'bcryptjs';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { silentLogger } from '../../../src/common/logger.js';
import { generateBundle, LOCAL_IPS } from '../../../src/webhook/certs.js';
import { WebhookMetrics } from '../../../src/webhook/metrics.js';
import { startWebhook, type RunningWebhook } from '../../../src/webhook/runtime.js';
import { MemoryTlsSource } from '../../../src/webhook/tls-source.js';
import { contentOnDisk } from '../../helpers/cache-disk.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { pushImage, type PushedImage } from '../../helpers/images.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { readDirImage, skopeoCopy } from '../../helpers/skopeo.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';
import { loadFixture } from '../../unit/webhook/fixtures.js';
import { clientFor, postJson, storeFor, testConfig } from '../webhook/support.js';

/**
 * Prefetch on admission, end to end: the webhook admits a pod, tells the mirror, and the mirror fetches the image
 * through its caching stores before the client asks. Real parts: docker-registry behind the Docker Hub-like front,
 * the mirror and the webhook (HTTPS) in-process, skopeo as the pulling client, htpasswd authentication.
 */

const cleanup = new Cleanup();
const PASSWORDS = { hook: 'Hook-Pa55', alice: 'Alice-Pa55', bob: 'Bob-Pa55' };
let hub: HubFront;
let registryUrl: string;
let htpasswd: string;
let passwordFile: string;

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  registryUrl = registry.url;
  hub = cleanup.add(await startHubFront({ target: registry.url }));
  const dir = cleanup.add(await makeTempDir('mirrorgate-prefetch-'));
  htpasswd = join(dir.path, 'htpasswd');
  writeFileSync(htpasswd, Object.entries(PASSWORDS).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 4)}\n`).join(''));
  passwordFile = join(dir.path, 'hook-password');
  writeFileSync(passwordFile, `${PASSWORDS.hook}\n`);
}, 120_000);

afterAll(() => cleanup.run());

const basic = (user: keyof typeof PASSWORDS): string => `Basic ${Buffer.from(`${user}:${PASSWORDS[user]}`).toString('base64')}`;

async function authMirror(extra: Record<string, unknown> = {}): Promise<TestMirror> {
  const storage = cleanup.add(await makeTempDir('mirrorgate-cache-'));
  return cleanup.add(
    await startMirror({
      upstreams: { 'docker.io': hub.url },
      storage,
      config: {
        mirror: {
          storage: { path: storage.path },
          auth: { htpasswd },
          hosted: { repositories: ['team/**'] },
          access: { rules: [{ users: ['alice', 'hook'], repositories: ['team/**'], actions: ['pull', 'push'] }] },
          ...extra,
        },
      },
    }),
  );
}

async function postPrefetch(mirror: TestMirror, body: unknown, headers: Record<string, string> = {}) {
  const res = await request(`${mirror.url}/v2/_mirrorgate/prefetch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: JSON.parse(text) as { images?: { image: string; state: string }[]; errors?: { code: string; message: string }[] } };
}

async function metric(mirror: TestMirror, line: RegExp): Promise<number> {
  const text = await (await request(`${mirror.url}/metrics`)).body.text();
  const m = text.split('\n').find((l) => line.test(l));
  return m ? Number(m.split(' ').pop()) : 0;
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** A webhook (HTTPS, in-process) rewriting to `mirror`, with prefetch on and the `hook` user's password in a file. */
async function webhookFor(mirror: TestMirror): Promise<{ wh: RunningWebhook; review(image: string, opts?: { dryRun?: boolean }): Promise<Record<string, unknown>> }> {
  const b = generateBundle({ now: Date.now(), validityMs: 86_400_000, dnsNames: ['localhost'], ipAddresses: LOCAL_IPS });
  const config = testConfig({
    mirrorHost: mirror.host,
    prefetch: { enabled: true, url: `${mirror.url}/v2/_mirrorgate/prefetch`, credentials: { username: { value: 'hook' }, password: { file: passwordFile } } },
  });
  const metrics = new WebhookMetrics();
  const wh = await startWebhook({
    configStore: storeFor(config, metrics),
    logger: silentLogger(),
    clock: new ManualClock(),
    metrics,
    listen: { host: '127.0.0.1', port: 0 },
    tls: new MemoryTlsSource({ cert: b.cert, key: b.key }),
    health: { reachable: () => true },
  });
  const agent = clientFor(b.caCert);
  cleanup.add(() => agent.close());
  cleanup.add(() => wh.close());
  let n = 0;
  return {
    wh,
    review: async (image, opts = {}) => {
      const review = loadFixture('pod-create-kubectl-run.json');
      review.request.uid = `prefetch-${++n}`;
      if (opts.dryRun) review.request.dryRun = true;
      (review.request.object as { spec: { containers: Array<{ image: string }> } }).spec.containers[0]!.image = image;
      const { status, body } = await postJson(agent, wh.port, review);
      expect(status).toBe(200);
      return body.response!;
    },
  };
}

const blobsOf = (image: PushedImage): string[] => [image.config.digest, ...image.layers.map((l) => l.digest)];

describe('POST /v2/_mirrorgate/prefetch', () => {
  it('is authenticated and scoped like a pull, refuses bad requests whole, and answers 202 with each image’s fate', async () => {
    const mirror = await authMirror();
    expect((await postPrefetch(mirror, { images: ['library/a:1'] })).status).toBe(401);
    expect((await postPrefetch(mirror, { images: ['library/a:1'] }, { authorization: `Basic ${Buffer.from('hook:wrong').toString('base64')}` })).status).toBe(401);

    // bob may pull proxied repositories, not team/**: the request is refused and nothing of it is queued.
    const denied = await postPrefetch(mirror, { images: ['library/nosuch:1', 'team/app:1'] }, { authorization: basic('bob') });
    expect(denied.status).toBe(403);
    expect(denied.body.errors![0]!.code).toBe('DENIED');
    const invalid = await postPrefetch(mirror, { images: ['library/nosuch:1', 'Bad/Name:1'] }, { authorization: basic('hook') });
    expect(invalid.status).toBe(400);
    expect(invalid.body.errors![0]).toMatchObject({ code: 'NAME_INVALID' });
    const unknown = await postPrefetch(mirror, { images: ['example.com/a/b:1'] }, { authorization: basic('hook') });
    expect(unknown.status).toBe(404);
    expect(unknown.body.errors![0]!.code).toBe('NAME_UNKNOWN');
    const notJson = await postPrefetch(mirror, 'images', { authorization: basic('hook'), 'content-type': 'text/plain' });
    expect(notJson.status).toBe(415);
    const big = await postPrefetch(mirror, { images: ['x'.repeat(70_000)] }, { authorization: basic('hook') });
    expect(big.status).toBe(413);
    expect(hub.requests.filter((r) => r.path.includes('nosuch'))).toEqual([]);
    expect(mirror.server.prefetcher!.pending).toBe(0);

    const ok = await postPrefetch(mirror, { images: ['library/nosuch:1', 'library/nosuch:1', 'team/app:1'] }, { authorization: basic('hook') });
    expect(ok.status).toBe(202);
    expect(ok.body.images).toEqual([
      { image: 'library/nosuch:1', state: 'queued' },
      { image: 'library/nosuch:1', state: 'merged' },
      { image: 'team/app:1', state: 'hosted' },
    ]);
    // An image the upstream does not have fails in the background; the answer was already sent.
    await until('the failed fetch', async () => ((await metric(mirror, /^mirrorgate_prefetch_images_total\{state="failed"\}/)) === 1 ? true : undefined));
    expect(await metric(mirror, /^mirrorgate_prefetch_requests_total\{result="accepted"\}/)).toBe(1);
    expect(await metric(mirror, /^mirrorgate_prefetch_requests_total\{result="denied"\}/)).toBe(1);
    // The oversized body never reached the endpoint: the request guard refused it on its Content-Length.
    expect(await metric(mirror, /^mirrorgate_prefetch_requests_total\{result="invalid"\}/)).toBe(3);
    expect(await metric(mirror, /^mirrorgate_mirror_requests_total\{method="POST",kind="prefetch",status="202"\}/)).toBe(1);
  }, 60_000);

  it('is not there when mirror.prefetch.enabled is false', async () => {
    const mirror = await authMirror({ prefetch: { enabled: false } });
    const res = await postPrefetch(mirror, { images: ['library/a:1'] }, { authorization: basic('hook') });
    expect(res.status).toBe(404);
    expect(mirror.server.prefetcher).toBeUndefined();
  }, 30_000);
});

describe('prefetch on admission', () => {
  it('a real admission of a pod with a cold image gets its blobs cached before any pull; the pull then sends nothing upstream; a dry run fetches nothing', async () => {
    const image = await pushImage(registryUrl, 'library/prefetch-cold', '1', { layers: [3000, 400_000, 250_000], format: 'docker', seed: `prefetch-cold-${Date.now()}` });
    const dry = await pushImage(registryUrl, 'library/prefetch-dry', '1', { layers: [2000], format: 'docker', seed: `prefetch-dry-${Date.now()}` });
    const mirror = await authMirror();
    const { wh, review } = await webhookFor(mirror);
    hub.reset();

    const dryAnswer = await review('prefetch-dry:1', { dryRun: true });
    expect(dryAnswer.patch).toBeDefined();
    const answer = await review('prefetch-cold:1');
    expect(answer).toMatchObject({ allowed: true, patchType: 'JSONPatch' });
    const patch = JSON.parse(Buffer.from(String(answer.patch), 'base64').toString()) as Array<{ path: string; value: unknown }>;
    expect(patch).toContainEqual(expect.objectContaining({ path: '/spec/containers/0/image', value: `${mirror.host}/library/prefetch-cold:1` }));

    await until('the prefetched blobs', () => {
      const cached = contentOnDisk(mirror.storage.path, 'blobs');
      return blobsOf(image).every((d) => cached.has(d)) ? true : undefined;
    });
    await until('the prefetch to settle', () => (mirror.server.prefetcher!.pending === 0 ? true : undefined));
    expect((await wh.metrics.prefetch.get()).values).toEqual([expect.objectContaining({ labels: { result: 'accepted' }, value: 1 })]);
    expect(await metric(mirror, /^mirrorgate_prefetch_images_total\{state="fetched"\}/)).toBe(1);
    // Nothing of the dry run's image was asked for.
    expect(hub.requests.filter((r) => r.path.includes('prefetch-dry'))).toEqual([]);
    const cached = contentOnDisk(mirror.storage.path, 'blobs');
    expect(blobsOf(dry).some((d) => cached.has(d))).toBe(false);

    hub.reset();
    const out = cleanup.add(await makeTempDir('mirrorgate-pull-'));
    await skopeoCopy(`docker://${mirror.host}/library/prefetch-cold:1`, `dir:${out.path}`, { throwOnError: true, srcCreds: `alice:${PASSWORDS.alice}` });
    expect((await readDirImage(out.path)).manifestDigest).toBe(image.digest);
    expect(hub.requests).toEqual([]);
  }, 120_000);

  it('a pull that starts while the prefetch is downloading joins it: one upstream GET per blob and per manifest', async () => {
    const image = await pushImage(registryUrl, 'library/prefetch-overlap', '1', { layers: [5000, 600_000, 300_000], format: 'oci', seed: `prefetch-overlap-${Date.now()}` });
    const mirror = await authMirror();
    const { review } = await webhookFor(mirror);
    hub.reset();
    // The upstream sends each blob's headers, then nothing for 1.5 s: the prefetch's downloads are in flight when the pull arrives.
    hub.faults.push({ match: { kind: 'blob', method: 'GET' }, times: Infinity, action: { type: 'stall', ms: 1500 } });
    cleanup.add(() => {
      hub.faults.length = 0;
    });
    await review('prefetch-overlap:1');
    await until('the prefetch’s first blob GET', () => (hub.count({ kind: 'blob', method: 'GET' }) > 0 ? true : undefined));

    const out = cleanup.add(await makeTempDir('mirrorgate-pull-'));
    await skopeoCopy(`docker://${mirror.host}/library/prefetch-overlap:1`, `dir:${out.path}`, { throwOnError: true, srcCreds: `alice:${PASSWORDS.alice}` });
    hub.faults.length = 0;
    expect((await readDirImage(out.path)).manifestDigest).toBe(image.digest);
    await until('the prefetch to settle', () => (mirror.server.prefetcher!.pending === 0 ? true : undefined));
    for (const digest of blobsOf(image)) expect(hub.count({ kind: 'blob', method: 'GET', pathIncludes: digest }), digest).toBe(1);
    expect(hub.requests.filter((r) => r.kind === 'manifest' && r.method === 'GET').map((r) => r.status)).toEqual([401, 200]); // the token challenge, then the manifest
    expect(await metric(mirror, /^mirrorgate_cache_lookups_total\{kind="blob",result="joined"\}/)).toBeGreaterThan(0);
  }, 120_000);
});
