import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/common/logger.js';
import { MirrorHealth } from '../../../src/webhook/mirror-health.js';
import { WebhookMetrics } from '../../../src/webhook/metrics.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

async function registry(status: () => number): Promise<string> {
  const s = createServer((_req, res) => {
    res.statusCode = status();
    res.end('{}');
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}/v2/`;
}

describe('MirrorHealth', () => {
  it('counts 200 and 401 as up, 5xx and connection errors as down, and exports a gauge', async () => {
    let status = 401;
    const metrics = new WebhookMetrics();
    const h = new MirrorHealth({ url: await registry(() => status), intervalMs: 60_000, timeoutMs: 1000, logger: silentLogger(), metrics });
    expect(h.reachable()).toBe(false);
    expect(await h.probe()).toBe(true);
    status = 200;
    expect(await h.probe()).toBe(true);
    status = 503;
    expect(await h.probe()).toBe(false);
    expect(h.reachable()).toBe(false);
    expect(await metrics.registry.getSingleMetricAsString('mirrorgate_webhook_mirror_reachable')).toMatch(/ 0$/m);

    const closed = new MirrorHealth({ url: 'http://127.0.0.1:1/v2/', intervalMs: 60_000, timeoutMs: 500, logger: silentLogger(), metrics });
    await closed.start();
    expect(closed.reachable()).toBe(false);
    closed.stop();
  });
});
