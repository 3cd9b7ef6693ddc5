import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { request, type Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { silentLogger } from '../../../src/common/logger.js';
import { generateBundle, LOCAL_IPS } from '../../../src/webhook/certs.js';
import { ConfigStore } from '../../../src/webhook/config-store.js';
import { WebhookMetrics } from '../../../src/webhook/metrics.js';
import { startWebhook, type RunningWebhook } from '../../../src/webhook/runtime.js';
import { FileTlsSource, MemoryTlsSource } from '../../../src/webhook/tls-source.js';
import { FIXTURE_FILES, loadFixture } from '../../unit/webhook/fixtures.js';
import { clientFor, eventually, postJson, storeFor, testConfig } from './support.js';

const M = 'registry.krisalee.dev.joona.fr';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function bundle() {
  return generateBundle({ now: Date.now(), validityMs: 86_400_000, dnsNames: ['localhost', 'mirrorgate-webhook.mirrorgate.svc'], ipAddresses: LOCAL_IPS });
}

async function start(opts: { reachable?: boolean; config?: ReturnType<typeof testConfig>; store?: ConfigStore } = {}) {
  const b = bundle();
  const tls = new MemoryTlsSource({ cert: b.cert, key: b.key });
  const store = opts.store ?? storeFor(opts.config ?? testConfig());
  const wh: RunningWebhook = await startWebhook({
    configStore: store,
    logger: silentLogger(),
    clock: new ManualClock(),
    metrics: new WebhookMetrics(),
    listen: { host: '127.0.0.1', port: 0 },
    tls,
    health: { reachable: () => opts.reachable ?? true },
  });
  const agent = clientFor(b.caCert);
  cleanups.push(() => wh.close(), () => agent.close());
  return { wh, agent, ca: b.caCert };
}

function applyResponse(review: { request: { object: unknown } }, response: Record<string, unknown>) {
  const patch: Operation[] = response.patch ? JSON.parse(Buffer.from(String(response.patch), 'base64').toString('utf8')) : [];
  return fastJsonPatch.applyPatch(structuredClone(review.request.object), patch, true, false).newDocument as {
    spec: { containers: Array<{ image: string }>; imagePullSecrets?: Array<{ name: string }> };
  };
}

describe('webhook over HTTPS', () => {
  it.each(FIXTURE_FILES)('answers %s with an AdmissionReview echoing the uid, verified against the CA', async (name) => {
    const { wh, agent } = await start();
    const review = loadFixture(name);
    const { status, body } = await postJson(agent, wh.port, review);
    expect(status).toBe(200);
    expect(body).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true } });
    if (name.startsWith('pod-create')) {
      const pod = applyResponse(review, body.response!);
      expect(pod.spec.containers.some((c) => c.image.startsWith(`${M}/`))).toBe(true);
      expect(pod.spec.imagePullSecrets?.map((s) => s.name)).toContain('mirrorgate-pull-secret');
      expect(body.response!.patchType).toBe('JSONPatch');
    }
  });

  it('rewrites kubectl run nginx to the mirror with the pull secret', async () => {
    const { wh, agent } = await start();
    const review = loadFixture('pod-create-kubectl-run.json');
    const { body } = await postJson(agent, wh.port, review);
    const pod = applyResponse(review, body.response!);
    expect(pod.spec.containers[0]!.image).toBe(`${M}/library/nginx:latest`);
    expect(pod.spec.imagePullSecrets).toEqual([{ name: 'mirrorgate-pull-secret' }]);
  });

  it('refuses a client that does not trust the CA', async () => {
    const { wh } = await start();
    const other = clientFor(bundle().caCert);
    cleanups.push(() => other.close());
    await expect(postJson(other, wh.port, loadFixture('pod-create-kubectl-run.json'))).rejects.toThrow();
  });

  it('answers bad input: AdmissionReview when there is a uid, bare 4xx when there is none', async () => {
    const { wh, agent } = await start();
    const noUid = await postJson(agent, wh.port, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} });
    expect(noUid.status).toBe(400);
    expect(noUid.body.code).toBe('REVIEW_MALFORMED');
    const notJson = await postJson(agent, wh.port, '{nope');
    expect(notJson.status).toBe(400);
    const v1beta1 = await postJson(agent, wh.port, { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'abc' } });
    expect(v1beta1.status).toBe(200);
    expect(v1beta1.body.response).toMatchObject({ uid: 'abc', allowed: false, status: { code: 400 } });
    const review = loadFixture('pod-create-kubectl-run.json');
    const wrongType = await postJson(agent, wh.port, review, { 'content-type': 'text/plain' });
    expect(wrongType.body.response).toMatchObject({ uid: review.request.uid, allowed: false, status: { code: 415 } });
    const wrongTypeNoUid = await postJson(agent, wh.port, '{}', { 'content-type': 'text/plain' });
    expect(wrongTypeNoUid.status).toBe(415);
  });

  it('caps the body size', async () => {
    const { wh, agent } = await start({ config: testConfig({ maxBodySize: 1024 }) });
    const res = await postJson(agent, wh.port, loadFixture('pod-create-kubectl-run.json'));
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('REVIEW_TOO_LARGE');
  });

  it('leaves images alone while the mirror is unreachable', async () => {
    const { wh, agent } = await start({ reachable: false, config: testConfig({ mirrorProbe: { enabled: true } }) });
    const { body } = await postJson(agent, wh.port, loadFixture('pod-create-kubectl-run.json'));
    expect(body.response!.patch).toBeUndefined();
    expect(body.response!.warnings).toEqual(['mirrorgate: the mirror is unreachable; images left unchanged']);
  });

  it('serves /healthz, /readyz and bounded /metrics', async () => {
    const { wh, agent } = await start();
    await postJson(agent, wh.port, loadFixture('pod-create-multi-registry.json'));
    const get = async (p: string) => {
      const r = await request(`https://127.0.0.1:${wh.port}${p}`, { dispatcher: agent as Agent });
      return { status: r.statusCode, text: await r.body.text() };
    };
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/readyz')).status).toBe(200);
    const metrics = await get('/metrics');
    expect(metrics.text).toContain('mirrorgate_webhook_images_total{result="rewritten",reason="rewritten"} 4');
    expect(metrics.text).toContain('mirrorgate_webhook_reviews_total{operation="CREATE",outcome="patched"} 1');
    expect(metrics.text).toContain('mirrorgate_webhook_review_duration_seconds_bucket');
  });
});

describe('reloading', () => {
  it('swaps the serving certificate when its files change, and keeps the old one when they are broken', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mirrorgate-tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const first = bundle();
    const files = { cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') };
    writeFileSync(files.cert, first.cert);
    writeFileSync(files.key, first.key);
    const metrics = new WebhookMetrics();
    const tls = new FileTlsSource(files, { logger: silentLogger(), metrics, pollMs: 50 });
    cleanups.push(() => tls.close());
    const wh = await startWebhook({
      configStore: storeFor(testConfig()),
      logger: silentLogger(),
      clock: new ManualClock(),
      metrics,
      listen: { host: '127.0.0.1', port: 0 },
      tls,
      health: { reachable: () => true },
    });
    cleanups.push(() => wh.close());
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const s = connect({ port: wh.port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false }, () => {
          resolve(s.getPeerX509Certificate()!.serialNumber);
          s.end();
        });
        s.on('error', reject);
      });
    const serialOf = (pem: string) => new X509Certificate(pem).serialNumber;
    expect(await served()).toBe(serialOf(first.cert));

    writeFileSync(files.cert, 'garbage');
    await new Promise((r) => setTimeout(r, 300));
    expect(await served()).toBe(serialOf(first.cert));

    const second = bundle();
    writeFileSync(files.key, second.key);
    writeFileSync(files.cert, second.cert);
    await eventually(async () => (await served()) === serialOf(second.cert), 5000, 'the new certificate');
  });

  it('reloads the configuration and keeps the last good one when the new file is invalid', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mirrorgate-cfg-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'config.yaml');
    writeFileSync(file, 'webhook:\n  mirrorProbe: { enabled: false }\n');
    const metrics = new WebhookMetrics();
    const store = new ConfigStore({ file, env: {} }, { logger: silentLogger(), metrics, pollMs: 50 });
    store.watch();
    cleanups.push(() => store.close());
    const { wh, agent } = await start({ store });
    const image = async () => {
      const review = loadFixture('pod-create-kubectl-run.json');
      const { body } = await postJson(agent, wh.port, review);
      return applyResponse(review, body.response!).spec.containers[0]!.image;
    };
    expect(await image()).toBe(`${M}/library/nginx:latest`);

    writeFileSync(file, 'webhook:\n  mirrorHost: m2.example\n  mirrorProbe: { enabled: false }\n');
    await eventually(async () => (await image()) === 'm2.example/library/nginx:latest', 5000, 'the new mirror host');

    writeFileSync(file, 'webhook:\n  mirrorHost: "not a host"\n');
    await eventually(async () => (await metrics.registry.getSingleMetricAsString('mirrorgate_webhook_config_reloads_total')).includes('result="error"'), 5000, 'a failed reload');
    expect(await image()).toBe('m2.example/library/nginx:latest');
  });
});
