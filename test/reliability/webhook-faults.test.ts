import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { KubeConfig } from '@kubernetes/client-node';
import { request, type Agent } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/common/logger.js';
import { generateBundle, LOCAL_IPS } from '../../src/webhook/certs.js';
import { WebhookMetrics } from '../../src/webhook/metrics.js';
import { startWebhook, type RunningWebhook } from '../../src/webhook/runtime.js';
import { MemoryTlsSource } from '../../src/webhook/tls-source.js';
import { clientFor, storeFor, testConfig } from '../integration/webhook/support.js';
import { loadFixture } from '../unit/webhook/fixtures.js';
import { freePort } from '../helpers/tmp.js';
import { rng } from '../helpers/rng.js';

/**
 * The webhook's fault matrix: broken, hostile and unusual AdmissionReviews, the mirror down, the API server
 * unreachable. Each answer is classified; the webhook must never answer 5xx, never hang, never crash, and
 * never block a pod because of its own failure.
 */
type WebhookOutcome = 'rewritten' | 'allowed unchanged' | 'clear error' | 'server error' | 'no answer';
const TRIALS = Number(process.env.MIRRORGATE_FAULT_TRIALS ?? 20);
const rows = new Map<string, Map<WebhookOutcome, number>>();
const cleanups: Array<() => unknown> = [];

afterAll(async () => {
  const kinds: WebhookOutcome[] = ['rewritten', 'allowed unchanged', 'clear error', 'server error', 'no answer'];
  const lines = [`| input | trials | ${kinds.join(' | ')} |`, `|---|---|${kinds.map(() => '---').join('|')}|`];
  for (const [name, r] of rows) lines.push(`| ${name} | ${[...r.values()].reduce((a, b) => a + b, 0)} | ${kinds.map((k) => r.get(k) ?? 0).join(' | ')} |`);
  console.log(`\nWebhook faults:\n${lines.join('\n')}\n`);
  for (const c of cleanups.reverse()) await c();
});

function record(name: string, outcome: WebhookOutcome): WebhookOutcome {
  const r = rows.get(name) ?? new Map<WebhookOutcome, number>();
  r.set(outcome, (r.get(outcome) ?? 0) + 1);
  rows.set(name, r);
  return outcome;
}

async function start(opts: { reachable?: boolean; kube?: { kc: KubeConfig }; maxBodySize?: number } = {}): Promise<{ wh: RunningWebhook; agent: Agent }> {
  const b = generateBundle({ now: Date.now(), validityMs: 86_400_000, dnsNames: ['localhost'], ipAddresses: LOCAL_IPS });
  const wh = await startWebhook({
    configStore: storeFor(testConfig({ mirrorProbe: { enabled: opts.reachable === false }, ...(opts.maxBodySize ? { maxBodySize: opts.maxBodySize } : {}) })),
    logger: silentLogger(),
    clock: new ManualClock(),
    metrics: new WebhookMetrics(),
    listen: { host: '127.0.0.1', port: 0 },
    tls: new MemoryTlsSource({ cert: b.cert, key: b.key }),
    health: { reachable: () => opts.reachable ?? true },
    ...(opts.kube ? { kube: { ...opts.kube, backoff: { initialDelayMs: 50, maxDelayMs: 200 } } } : {}),
  });
  const agent = clientFor(b.caCert);
  cleanups.push(() => wh.close(), () => agent.close());
  return { wh, agent };
}

/** Posts a body and classifies the answer. */
async function post(agent: Agent, port: number, body: string | Buffer, contentType = 'application/json'): Promise<{ outcome: WebhookOutcome; pod?: unknown }> {
  let res;
  try {
    res = await request(`https://127.0.0.1:${port}/mutate`, { method: 'POST', dispatcher: agent, headers: { 'content-type': contentType }, body, headersTimeout: 10_000, bodyTimeout: 10_000 });
  } catch {
    return { outcome: 'no answer' };
  }
  const text = await res.body.text();
  if (res.statusCode >= 500) return { outcome: 'server error' };
  let doc: { response?: { allowed?: boolean; patch?: string; status?: { message?: string } }; code?: string; message?: string };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    return { outcome: 'server error' }; // an answer that is not JSON is not a clear error
  }
  if (res.statusCode >= 400) return { outcome: doc.code || doc.message ? 'clear error' : 'server error' };
  const r = doc.response;
  if (!r) return { outcome: 'server error' };
  if (r.allowed === false) return { outcome: r.status?.message ? 'clear error' : 'server error' };
  if (!r.patch) return { outcome: 'allowed unchanged' };
  return { outcome: 'rewritten', pod: JSON.parse(Buffer.from(r.patch, 'base64').toString('utf8')) as Operation[] };
}


describe('webhook faults', () => {
  const random = rng(7);
  const review = loadFixture('pod-create-kubectl-run.json');
  const text = JSON.stringify(review);

  it('truncated, corrupted and wrong-shaped reviews get clear errors, never a 5xx or a crash', async () => {
    const { wh, agent } = await start();
    for (let i = 0; i < TRIALS; i++) {
      const cut = text.slice(0, 1 + Math.floor(random() * (text.length - 2)));
      expect(record('truncated JSON', (await post(agent, wh.port, cut)).outcome)).toBe('clear error');
      const bytes = Buffer.from(text);
      for (let k = 0; k < 5; k++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      const garbled = (await post(agent, wh.port, bytes)).outcome;
      record('random bytes flipped', garbled);
      expect(['clear error', 'rewritten', 'allowed unchanged']).toContain(garbled);
    }
    for (const [name, body] of [
      ['wrong kind', { ...review, kind: 'Pod' }],
      ['wrong version', { ...review, apiVersion: 'admission.k8s.io/v1beta1' }],
      ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }],
      ['request without uid', { ...review, request: { ...review.request, uid: undefined } }],
      ['object not a pod', { ...review, request: { ...review.request, object: { kind: 'Deployment', spec: 42 } } }],
      ['containers not a list', { ...review, request: { ...review.request, object: { ...review.request.object, spec: { containers: 'nginx' } } } }],
    ] as const) {
      for (let i = 0; i < TRIALS; i++) {
        const outcome = record(name, (await post(agent, wh.port, JSON.stringify(body))).outcome);
        expect(['clear error', 'allowed unchanged']).toContain(outcome);
      }
    }
  });

  it('an oversized review gets a clear 413', async () => {
    const { wh, agent } = await start({ maxBodySize: 64 * 1024 });
    for (let i = 0; i < TRIALS; i++) {
      const big = JSON.stringify({ ...review, padding: 'x'.repeat(70 * 1024 + i) });
      expect(record('oversized body', (await post(agent, wh.port, big)).outcome)).toBe('clear error');
    }
  });

  it('unknown fields and a pod with 200 containers are handled', async () => {
    const { wh, agent } = await start();
    for (let i = 0; i < TRIALS; i++) {
      const withExtra = structuredClone(review) as typeof review & Record<string, unknown>;
      withExtra[`x-unknown-${i}`] = { nested: [i] };
      (withExtra.request.object as Record<string, unknown>)[`futureField${i}`] = 'v';
      expect(record('unknown fields', (await post(agent, wh.port, JSON.stringify(withExtra))).outcome)).toBe('rewritten');
    }
    const huge = structuredClone(review);
    const spec = huge.request.object.spec as { containers: Array<{ name: string; image: string }> };
    spec.containers = Array.from({ length: 200 }, (_, i) => ({ name: `c${i}`, image: i % 2 ? `busybox:1.${i}` : `ghcr.io/org/app${i}:v1` }));
    for (let i = 0; i < Math.min(TRIALS, 5); i++) {
      const { outcome, pod } = await post(agent, wh.port, JSON.stringify(huge));
      record('pod with 200 containers', outcome);
      expect(outcome).toBe('rewritten');
      const patched = fastJsonPatch.applyPatch(structuredClone(huge.request.object), pod as Operation[], true, false).newDocument as typeof huge.request.object;
      const images = (patched.spec as typeof spec).containers.map((c) => c.image);
      expect(images.every((im) => im.startsWith('registry.krisalee.dev.joona.fr/'))).toBe(true);
    }
  });

  it('the mirror down: pods are admitted unchanged, with a warning', async () => {
    const { wh, agent } = await start({ reachable: false });
    for (let i = 0; i < TRIALS; i++) expect(record('mirror unreachable', (await post(agent, wh.port, text)).outcome)).toBe('allowed unchanged');
  });

  it('the API server unreachable for the pull secret sync: admission goes on', async () => {
    const kc = new KubeConfig();
    const port = await freePort(); // nothing listens there
    kc.loadFromOptions({
      clusters: [{ name: 'gone', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'c', cluster: 'gone', user: 'u' }],
      currentContext: 'c',
    });
    const { wh, agent } = await start({ kube: { kc } });
    for (let i = 0; i < TRIALS; i++) expect(record('API server unreachable', (await post(agent, wh.port, text)).outcome)).toBe('rewritten');
  });

  it('never a server error, never silence', () => {
    for (const r of rows.values()) {
      expect(r.get('server error') ?? 0).toBe(0);
      expect(r.get('no answer') ?? 0).toBe(0);
    }
  });
});
