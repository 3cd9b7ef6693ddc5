import { Agent, request } from 'undici';
import { silentLogger } from '../../../src/common/logger.js';
import type { Config } from '../../../src/config/schema.js';
import { configSchema } from '../../../src/config/schema.js';
import { ConfigStore } from '../../../src/webhook/config-store.js';
import { WebhookMetrics } from '../../../src/webhook/metrics.js';

/** Shared set-up for the webhook's integration tests. */

export function testConfig(webhook: Record<string, unknown> = {}): Config {
  return configSchema.parse({ webhook: { mirrorProbe: { enabled: false }, ...webhook } });
}

export function storeFor(config: Config, metrics = new WebhookMetrics()): ConfigStore {
  return new ConfigStore({}, { logger: silentLogger(), metrics }, config);
}

/** An HTTPS client that trusts only the given CA and checks the host name. */
export function clientFor(ca: string, servername = 'localhost'): Agent {
  return new Agent({ connect: { ca, servername, rejectUnauthorized: true }, keepAliveTimeout: 1000 });
}

export async function postJson(agent: Agent, port: number, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const res = await request(`https://127.0.0.1:${port}/mutate`, {
    method: 'POST',
    dispatcher: agent,
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: JSON.parse(text) as Record<string, unknown> & { response?: Record<string, unknown> } };
}

export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
