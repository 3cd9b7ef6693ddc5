import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { silentLogger } from '../../../src/common/logger.js';
import { generateBundle, LOCAL_IPS } from '../../../src/webhook/certs.js';
import { WebhookMetrics } from '../../../src/webhook/metrics.js';
import { startWebhook, type RunningWebhook } from '../../../src/webhook/runtime.js';
import { MemoryTlsSource } from '../../../src/webhook/tls-source.js';
import { FIXTURE_FILES, loadFixture } from '../../unit/webhook/fixtures.js';
import { clientFor, storeFor, testConfig } from './support.js';

/**
 * The API server's request (`POST /mutate`, a plain JSON body) is answered without express; every other way in
 * goes through express. Both must give the same answer to the same body: status, headers and bytes.
 */

const LIMIT = 16 * 1024;
let wh: RunningWebhook;
let agent: Agent;

beforeAll(async () => {
  const b = generateBundle({ now: Date.now(), validityMs: 86_400_000, dnsNames: ['localhost'], ipAddresses: LOCAL_IPS });
  wh = await startWebhook({
    configStore: storeFor(testConfig({ maxBodySize: LIMIT })),
    logger: silentLogger(),
    clock: new ManualClock(),
    metrics: new WebhookMetrics(),
    listen: { host: '127.0.0.1', port: 0 },
    tls: new MemoryTlsSource({ cert: b.cert, key: b.key }),
    health: { reachable: () => true },
  });
  agent = clientFor(b.caCert);
});
afterAll(async () => {
  await agent?.close();
  await wh?.close();
});

interface Sent {
  body: string | Buffer | (() => Readable);
  headers?: Record<string, string>;
}

async function post(path: string, sent: Sent) {
  const body = typeof sent.body === 'function' ? sent.body() : sent.body;
  const res = await request(`https://127.0.0.1:${wh.port}${path}`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', ...sent.headers },
    body,
  });
  const text = await res.body.text();
  const { date: _date, connection: _connection, 'keep-alive': _keepAlive, ...headers } = res.headers;
  return { status: res.statusCode, headers, text };
}

const review = (name: (typeof FIXTURE_FILES)[number]) => JSON.stringify(loadFixture(name));
const kubectlRun = review('pod-create-kubectl-run.json');
const CASES: Array<[string, Sent]> = [
  ...FIXTURE_FILES.map((name): [string, Sent] => [name, { body: review(name) }]),
  ['not JSON', { body: '{nope' }],
  ['an empty body', { body: '' }],
  ['no uid', { body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} }) }],
  ['v1beta1', { body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'abc' } }) }],
  ['a wrong Content-Type with a uid', { body: kubectlRun, headers: { 'content-type': 'text/plain' } }],
  ['a wrong Content-Type without a uid', { body: '{}', headers: { 'content-type': 'text/plain' } }],
  ['a Content-Type with a charset', { body: kubectlRun, headers: { 'content-type': 'application/json; charset=utf-8' } }],
  ['too large, by Content-Length', { body: JSON.stringify({ pad: 'x'.repeat(LIMIT) }) }],
  ['too large, chunked', { body: () => Readable.from([Buffer.alloc(LIMIT / 2, 0x20), Buffer.alloc(LIMIT, 0x20)]) }],
  ['a chunked review', { body: () => Readable.from([Buffer.from(kubectlRun.slice(0, 100)), Buffer.from(kubectlRun.slice(100))]) }],
];

describe('the API server path and the express path answer alike', () => {
  it.each(CASES)('%s', async (_name, sent) => {
    const direct = await post('/mutate?timeout=10s', sent);
    const viaExpress = await post('/mutate/', sent);
    expect(direct).toEqual(viaExpress);
    expect(direct.headers['content-type']).toBe('application/json; charset=utf-8');
  });

  it('a gzip-compressed review (only express reads it) gets the plain review\'s answer', async () => {
    const plain = await post('/mutate', { body: kubectlRun });
    const gzipped = await post('/mutate', { body: gzipSync(kubectlRun), headers: { 'content-encoding': 'gzip' } });
    expect(gzipped).toEqual(plain);
    expect(plain.status).toBe(200);
    expect(JSON.parse(plain.text).response.patchType).toBe('JSONPatch');
  });

  it('answers concurrent reviews, each with its own uid', async () => {
    const answers = await Promise.all(FIXTURE_FILES.map((name) => post('/mutate', { body: review(name) })));
    answers.forEach((a, i) => expect(JSON.parse(a.text).response.uid).toBe(loadFixture(FIXTURE_FILES[i]!).request.uid));
  });
});
