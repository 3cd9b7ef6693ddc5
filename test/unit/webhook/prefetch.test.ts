import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { silentLogger } from '../../../src/common/logger.js';
import { configSchema } from '../../../src/config/schema.js';
import { Admitter } from '../../../src/webhook/admit.js';
import { WebhookMetrics } from '../../../src/webhook/metrics.js';
import { cachedAuthorization, defaultPrefetchUrl, PrefetchNotifier, prefetchImages } from '../../../src/webhook/prefetch.js';
import { decodeReview } from '../../../src/webhook/review.js';
import { rulesFromConfig } from '../../../src/webhook/rules.js';
import { loadFixture } from './fixtures.js';

const M = 'registry.krisalee.dev.joona.fr';
const D64 = 'a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Received {
  headers: IncomingMessage['headers'];
  body: unknown;
}

/** A loopback stand-in for the mirror's prefetch endpoint: records what arrives, answers as told (or never). */
async function endpoint(answer: 'accept' | 'error' | 'never'): Promise<{ url: string; received: Received[]; waitFor(n: number): Promise<void> }> {
  const received: Received[] = [];
  const waiters: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString('utf8')));
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(text) });
      for (const w of waiters.splice(0)) w();
      if (answer === 'accept') res.writeHead(202, { 'content-type': 'application/json' }).end('{"images":[]}');
      else if (answer === 'error') res.writeHead(500).end('{"errors":[{"code":"UNKNOWN"}]}');
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/_mirrorgate/prefetch`;
  return {
    url,
    received,
    waitFor: async (n) => {
      while (received.length < n) await new Promise<void>((r) => waiters.push(r));
    },
  };
}

function notifier(url: string, opts: { timeoutMs?: number; maxInFlight?: number; authorization?: () => string | undefined } = {}) {
  const metrics = new WebhookMetrics();
  const n = new PrefetchNotifier({ url, timeoutMs: opts.timeoutMs ?? 5000, maxInFlight: opts.maxInFlight ?? 16, authorization: opts.authorization, logger: silentLogger(), metrics });
  cleanups.push(() => n.close());
  return { n, metrics };
}

function admitter(prefetch: ((images: readonly string[]) => void) | undefined) {
  const config = configSchema.parse({});
  const metrics = new WebhookMetrics();
  const a = new Admitter({
    settings: () => ({ rules: rulesFromConfig(config), pullSecretName: 'mirrorgate-pull-secret' }),
    rewriteAllowed: () => true,
    metrics,
    logger: silentLogger(),
    summary: { add: () => {} },
    prefetch,
  });
  return { a, metrics };
}

function admit(a: Admitter, review: unknown) {
  const d = decodeReview(review);
  if (!d.ok) throw new Error(d.message);
  return a.admit(d.request);
}

async function count(metrics: WebhookMetrics, result: string): Promise<number> {
  const m = await metrics.prefetch.get();
  return m.values.find((v) => v.labels.result === result)?.value ?? 0;
}

async function until(cond: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the images a rewrite sends to the mirror', () => {
  it('are the rewritten references without the mirror host, each once, and only the rewritten ones', () => {
    const { a } = admitter(undefined);
    const sent: string[][] = [];
    const { a: b } = admitter((images) => sent.push([...images]));
    const review = loadFixture('pod-create-multi-registry.json');
    admit(b, review);
    expect(sent.length).toBe(1);
    expect(sent[0]!.sort()).toEqual(['ghcr.io/example-org/app:v2.3.1', 'library/busybox:1.36', `library/redis@sha256:${D64}`, 'quay.io/prometheus/node-exporter:v1.8.2']);
    // The answer does not depend on whether anybody is told.
    expect(admit(a, review)).toEqual(admit(b, review));
    expect(prefetchImages([{ field: 'containers', container: 'a', input: 'x', output: `${M}/library/x:1`, changed: true, reason: 'rewritten' }, { field: 'containers', container: 'b', input: 'x', output: `${M}/library/x:1`, changed: true, reason: 'rewritten' }], M)).toEqual(['library/x:1']);
  });

  it('are not sent for a dry run, nor when nothing was rewritten', () => {
    const sent: unknown[] = [];
    const { a } = admitter((images) => sent.push(images));
    admit(a, loadFixture('pod-create-dry-run.json'));
    const mirrored = loadFixture('pod-create-kubectl-run.json');
    const spec = (mirrored.request.object as { spec: { containers: Array<{ image: string }> } }).spec;
    spec.containers[0]!.image = `${M}/library/nginx:1.27`;
    admit(a, mirrored);
    expect(sent).toEqual([]);
    admit(a, loadFixture('pod-create-kubectl-run.json'));
    expect(sent).toEqual([['library/nginx:latest']]);
  });

  it('a prefetch hook that throws changes nothing: the pod is admitted as mutated, not failed open', () => {
    const { a: plain } = admitter(undefined);
    const { a, metrics } = admitter(() => {
      throw new Error('boom');
    });
    const review = loadFixture('pod-create-kubectl-run.json');
    expect(admit(a, review)).toEqual(admit(plain, review));
    return metrics.failOpen.get().then((m) => expect(m.values[0]?.value ?? 0).toBe(0));
  });

  it('the default endpoint is on the origin of the probe URL', () => {
    expect(defaultPrefetchUrl('http://mirrorgate-mirror.mirrorgate.svc:5000/v2/')).toBe('http://mirrorgate-mirror.mirrorgate.svc:5000/v2/_mirrorgate/prefetch');
    expect(defaultPrefetchUrl(`https://${M}/v2/`)).toBe(`https://${M}/v2/_mirrorgate/prefetch`);
  });
});

describe('PrefetchNotifier', () => {
  it('returns at once and sends after the current tick, with the credentials; the mirror’s 202 counts as accepted', async () => {
    const ep = await endpoint('accept');
    const clock = new ManualClock();
    const auth = cachedAuthorization({ username: { value: 'hook' }, password: { value: 's3cret' } }, {}, clock);
    const { n, metrics } = notifier(ep.url, { authorization: auth });
    n.notify(['library/nginx:latest', 'ghcr.io/org/app@sha256:' + D64]);
    expect(n.pending).toBe(1);
    expect(ep.received).toEqual([]);
    await ep.waitFor(1);
    expect(ep.received[0]!.body).toEqual({ images: ['library/nginx:latest', `ghcr.io/org/app@sha256:${D64}`] });
    expect(ep.received[0]!.headers.authorization).toBe(`Basic ${Buffer.from('hook:s3cret').toString('base64')}`);
    expect(ep.received[0]!.headers['content-type']).toBe('application/json');
    await until(async () => (await count(metrics, 'accepted')) === 1, 'the accepted count');
    n.notify([]);
    expect(n.pending).toBe(0);
  });

  it('counts an error answer as refused and an endpoint that never answers as failed after the timeout', async () => {
    const bad = await endpoint('error');
    const { n, metrics } = notifier(bad.url);
    n.notify(['library/a:1']);
    await until(async () => (await count(metrics, 'refused')) === 1, 'the refused count');

    const silent = await endpoint('never');
    const slow = notifier(silent.url, { timeoutMs: 100 });
    slow.n.notify(['library/a:1']);
    await until(async () => (await count(slow.metrics, 'failed')) === 1, 'the failed count');
    expect(slow.n.pending).toBe(0);
  });

  it('keeps at most maxInFlight notices under way and drops the rest', async () => {
    const silent = await endpoint('never');
    const { n, metrics } = notifier(silent.url, { maxInFlight: 3, timeoutMs: 30_000 });
    for (let i = 0; i < 10; i++) n.notify([`library/app:${i}`]);
    expect(n.pending).toBe(3);
    expect(await count(metrics, 'dropped')).toBe(7);
    await silent.waitFor(3);
    expect(silent.received.map((r) => r.body)).toEqual([0, 1, 2].map((i) => ({ images: [`library/app:${i}`] })));
  });

  it('a secret that cannot be read fails the notice, not the caller; the header is read again only after its TTL', async () => {
    const ep = await endpoint('accept');
    const clock = new ManualClock();
    const env: NodeJS.ProcessEnv = {};
    const auth = cachedAuthorization({ username: { value: 'hook' }, password: { env: 'PW' } }, env, clock, 1000);
    const { n, metrics } = notifier(ep.url, { authorization: auth });
    n.notify(['library/a:1']);
    await until(async () => (await count(metrics, 'failed')) === 1, 'the failed count');
    env.PW = 'one';
    n.notify(['library/a:1']);
    await ep.waitFor(1);
    env.PW = 'two';
    n.notify(['library/a:1']);
    await ep.waitFor(2);
    clock.advance(1000);
    n.notify(['library/a:1']);
    await ep.waitFor(3);
    const users = ep.received.map((r) => Buffer.from(String(r.headers.authorization).slice(6), 'base64').toString());
    expect(users).toEqual(['hook:one', 'hook:one', 'hook:two']);
  });
});
