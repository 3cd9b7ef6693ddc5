import { Agent } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/common/clock.js';
import { silentLogger } from '../../../src/common/logger.js';
import { loadConfig } from '../../../src/config/load.js';
import { upstreamSchema } from '../../../src/config/schema.js';
import { issueServingCert } from '../../../src/webhook/certs.js';
import { UpstreamClient } from '../../../src/mirror/upstream/client.js';
import { startHostileServer, sendJson, type HostileServer } from '../../helpers/hostile-upstream.js';
import { testCa } from '../../helpers/test-certs.js';
import { Cleanup } from '../../helpers/tmp.js';

/** The client against a real HTTPS upstream (a test CA it is told to trust) that tries to downgrade it. */
const cleanup = new Cleanup();
const ca = testCa();
let upstream: HostileServer;
let plain: HostileServer;
let dispatcher: Agent;

beforeAll(async () => {
  const pair = issueServingCert(ca, { now: Date.now(), validityMs: 86_400_000, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  upstream = cleanup.add(await startHostileServer({ tls: pair }));
  plain = cleanup.add(await startHostileServer());
  dispatcher = new Agent({ connect: { ca: ca.cert } });
  cleanup.add(() => dispatcher.close());
});

afterAll(() => cleanup.run());

beforeEach(() => {
  plain.requests.length = 0;
});

function client(extra: Record<string, unknown> = {}): UpstreamClient {
  const config = upstreamSchema.parse({ url: upstream.url, credentials: { username: { value: 'bot' }, password: { value: 'secret-pass' } }, ...extra });
  const c = new UpstreamClient({ host: 'example.io', config, logger: silentLogger(), clock: systemClock, env: {}, dispatcher });
  cleanup.add(() => c.close());
  return c;
}

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error('expected the request to fail');
}

describe('an https upstream', () => {
  it('refuses a plain-http token realm: the credentials are not sent', async () => {
    upstream.handle = (_req, res) => sendJson(res, 401, { errors: [] }, { 'www-authenticate': `Bearer realm="${plain.url}/token",service="x"` });
    const err = await failure(client().request({ method: 'GET', path: '/v2/a/manifests/1', repository: 'a', kind: 'manifest' }));
    expect(err.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(err.message).not.toContain(plain.url);
    expect(plain.requests).toEqual([]);
  });

  it('refuses a configured plain-http token realm at start-up', () => {
    expect(upstreamSchema.safeParse({ url: 'https://registry.example', tokenRealm: 'http://auth.example/token' }).success).toBe(false);
    expect(upstreamSchema.safeParse({ url: 'https://registry.example', tokenRealm: 'https://auth.example/token' }).success).toBe(true);
  });

  it('follows every redirect of registry.k8s.io by default (it redirects manifests to its backends), only blob redirects of others', () => {
    for (const config of [loadConfig({}), loadConfig({ env: { MIRRORGATE_UPSTREAMS: 'registry.k8s.io,docker.io' } })]) {
      expect(config.upstreams['registry.k8s.io']!.redirects).toBe('all');
      expect(config.upstreams['docker.io']!.redirects).toBe('blobs');
    }
  });

  it('never follows a redirect to plain http, even with private redirects allowed', async () => {
    upstream.handle = (_req, res) => {
      res.writeHead(307, { location: `${plain.url}/blob`, 'content-length': 0 });
      res.end();
    };
    const err = await failure(client({ allowPrivateRedirects: true }).request({ method: 'GET', path: '/v2/a/blobs/sha256:00', repository: 'a', kind: 'blob' }));
    expect(err.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(plain.requests).toEqual([]);
  });

  it('follows a blob redirect within its own origin', async () => {
    upstream.handle = (req, res) => {
      if (req.url === '/v2/a/blobs/sha256:00') {
        res.writeHead(307, { location: '/storage/blob', 'content-length': 0 });
        res.end();
      } else sendJson(res, 200, '{}');
    };
    const res = await client().request({ method: 'GET', path: '/v2/a/blobs/sha256:00', repository: 'a', kind: 'blob' });
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${upstream.url}/storage/blob`);
    res.body.resume();
  });
});
