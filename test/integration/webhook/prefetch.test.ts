import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { silentLogger } from '../../../src/common/logger.js';
import { generateBundle, LOCAL_IPS } from '../../../src/webhook/certs.js';
import { WebhookMetrics } from '../../../src/webhook/metrics.js';
import { startWebhook } from '../../../src/webhook/runtime.js';
import { MemoryTlsSource } from '../../../src/webhook/tls-source.js';
import { freePort } from '../../helpers/tmp.js';
import { loadFixture } from '../../unit/webhook/fixtures.js';
import { clientFor, eventually, postJson, storeFor, testConfig } from './support.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function closeOnCleanup(server: Server | ReturnType<typeof createHttpServer>, sockets: Set<Socket>): void {
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
}

/** Accepts connections and reads what comes, never answers. Counts the requests that arrived. */
async function blackHole(): Promise<{ url: string; requests: () => number }> {
  const sockets = new Set<Socket>();
  let requests = 0;
  const server = createServer((s) => s.on('data', (c: Buffer) => (requests += (c.toString('latin1').match(/^POST /gm) ?? []).length)));
  closeOnCleanup(server, sockets);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/_mirrorgate/prefetch`, requests: () => requests };
}

async function failing(): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createHttpServer((req, res) => {
    req.resume();
    res.writeHead(500, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNKNOWN","message":"boom"}]}');
  });
  closeOnCleanup(server, sockets);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/_mirrorgate/prefetch`;
}

async function webhook(prefetch: Record<string, unknown>) {
  const b = generateBundle({ now: Date.now(), validityMs: 86_400_000, dnsNames: ['localhost'], ipAddresses: LOCAL_IPS });
  const metrics = new WebhookMetrics();
  const wh = await startWebhook({
    configStore: storeFor(testConfig({ prefetch }), metrics),
    logger: silentLogger(),
    clock: new ManualClock(),
    metrics,
    listen: { host: '127.0.0.1', port: 0 },
    tls: new MemoryTlsSource({ cert: b.cert, key: b.key }),
    health: { reachable: () => true },
  });
  const agent = clientFor(b.caCert);
  cleanups.push(() => wh.close(), () => agent.close());
  return { wh, metrics, post: (review: unknown) => postJson(agent, wh.port, review) };
}

const REVIEWS = ['pod-create-kubectl-run.json', 'pod-create-multi-registry.json', 'pod-create-from-replicaset.json', 'pod-create-dry-run.json', 'pod-update-set-image.json'] as const;

async function prefetchCount(metrics: WebhookMetrics, result: string): Promise<number> {
  return (await metrics.prefetch.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
}

describe('prefetch notices never affect admission', () => {
  it('a mirror endpoint that never answers delays no review; notices beyond maxInFlight are dropped', async () => {
    const hole = await blackHole();
    const { post, metrics } = await webhook({ enabled: true, url: hole.url, timeout: '60s', maxInFlight: 4 });
    const started = performance.now();
    for (let i = 0; i < 20; i++) {
      const { status, body } = await post(loadFixture('pod-create-kubectl-run.json'));
      expect(status).toBe(200);
      expect(body.response).toMatchObject({ allowed: true, patchType: 'JSONPatch' });
    }
    // Bounded and generous: one hanging notice awaited would take the 60 s timeout.
    expect(performance.now() - started).toBeLessThan(10_000);
    await eventually(() => hole.requests() === 4, 5000, 'the four notices in flight');
    expect(await prefetchCount(metrics, 'dropped')).toBe(16);
  }, 30_000);

  it('answers are the same, byte for byte, whether the endpoint accepts, fails, refuses connections, or prefetch is off', async () => {
    const closedPort = await freePort();
    const off = await webhook({ enabled: false });
    const variants = [
      { what: 'a 500 answer', ...(await webhook({ enabled: true, url: await failing() })), result: 'refused' },
      { what: 'connection refused', ...(await webhook({ enabled: true, url: `http://127.0.0.1:${closedPort}/v2/_mirrorgate/prefetch` })), result: 'failed' },
      { what: 'never answers', ...(await webhook({ enabled: true, url: (await blackHole()).url, timeout: '50ms' })), result: 'failed' },
    ];
    for (const name of REVIEWS) {
      const expected = (await off.post(loadFixture(name))).body;
      for (const v of variants) expect((await v.post(loadFixture(name))).body, `${name}, ${v.what}`).toEqual(expected);
    }
    // kubectl run, the multi-registry pod and the ReplicaSet's pod rewrote images; the dry run sent nothing, the update
    // rewrote none (the pod has no pull secret for the mirror).
    for (const v of variants) await eventually(async () => (await prefetchCount(v.metrics, v.result)) === 3, 5000, `${v.what}: three notices counted ${v.result}`);
    expect(await prefetchCount(off.metrics, 'accepted')).toBe(0);
  }, 30_000);
});
