import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { silentLogger } from '../../../src/common/logger.js';
import { WebhookMetrics } from '../../../src/webhook/metrics.js';
import { startWebhook, type RunningWebhook } from '../../../src/webhook/runtime.js';
import { FakeKubeApi } from '../../helpers/fake-kube-api.js';
import { loadFixture } from '../../unit/webhook/fixtures.js';
import { clientFor, eventually, postJson, storeFor, testConfig } from './support.js';

const NS = 'mirrorgate';
const DAY = 86_400_000;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const b64 = (s: string) => Buffer.from(s).toString('base64');
const dockerConfig = (password: string) => ({ '.dockerconfigjson': b64(JSON.stringify({ auths: { 'registry.krisalee.dev.joona.fr': { auth: b64(`puller:${password}`) } } })) });

async function cluster() {
  const api = new FakeKubeApi();
  await api.start();
  cleanups.push(() => api.close());
  api.put('namespaces', { metadata: { name: NS } });
  api.put('namespaces', { metadata: { name: 'team-a', labels: { 'mirrorgate.io/mirror': 'enabled' } } });
  api.put('namespaces', { metadata: { name: 'team-b' } });
  api.put('secrets', { metadata: { name: 'mirrorgate-pull-secret', namespace: NS }, type: 'kubernetes.io/dockerconfigjson', data: dockerConfig('one') });
  api.put('mutatingwebhookconfigurations', {
    metadata: { name: 'mirrorgate' },
    webhooks: [
      { name: 'pods.mirrorgate.io', clientConfig: { service: { name: 'mirrorgate-webhook', namespace: NS, path: '/mutate' } }, admissionReviewVersions: ['v1'], sideEffects: 'None' },
    ],
  });
  return api;
}

async function run(api: FakeKubeApi, clock = new ManualClock(Date.now())): Promise<RunningWebhook> {
  const wh = await startWebhook({
    configStore: storeFor(testConfig({ namespace: NS })),
    logger: silentLogger(),
    clock,
    metrics: new WebhookMetrics(),
    listen: { host: '127.0.0.1', port: 0 },
    health: { reachable: () => true },
    kube: { kc: api.kubeConfig(), certCheckIntervalMs: 100, backoff: { initialDelayMs: 50, maxDelayMs: 200 } },
  });
  cleanups.push(() => wh.close());
  return wh;
}

const secretData = (api: FakeKubeApi, ns: string, name = 'mirrorgate-pull-secret') => api.get('secrets', name, ns)?.data as Record<string, string> | undefined;
const decoded = (api: FakeKubeApi, key: string) => Buffer.from(secretData(api, NS, 'mirrorgate-webhook-tls')![key]!, 'base64').toString('utf8');

describe('generated certificates with a cluster', () => {
  it('stores the CA and serving certificate in a Secret, patches the caBundle, and serves with them', async () => {
    const api = await cluster();
    const wh = await run(api);
    const tlsSecret = api.get('secrets', 'mirrorgate-webhook-tls', NS)!;
    expect(tlsSecret.type).toBe('kubernetes.io/tls');
    expect(tlsSecret.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'mirrorgate' });
    const ca = decoded(api, 'ca.crt');
    const mwc = api.get('mutatingwebhookconfigurations', 'mirrorgate') as unknown as { webhooks: Array<{ clientConfig: { caBundle?: string } }> };
    expect(mwc.webhooks[0]!.clientConfig.caBundle).toBe(b64(ca));
    const patches = api.requests.filter((r) => r.method === 'PATCH');
    expect(patches[0]?.contentType).toContain('application/json-patch+json');

    // The API server's view: trust the caBundle, call the Service name.
    const agent = clientFor(ca, 'mirrorgate-webhook.mirrorgate.svc');
    cleanups.push(() => agent.close());
    const { body } = await postJson(agent, wh.port, loadFixture('pod-create-kubectl-run.json'));
    expect(body.response).toMatchObject({ allowed: true, patchType: 'JSONPatch' });
  });

  it('a second replica reuses the Secret; a re-applied configuration gets its caBundle back', async () => {
    const api = await cluster();
    await run(api);
    const cert = decoded(api, 'tls.crt');
    await run(api);
    expect(decoded(api, 'tls.crt')).toBe(cert);

    const mwc = api.get('mutatingwebhookconfigurations', 'mirrorgate')!;
    (mwc as unknown as { webhooks: Array<{ clientConfig: { caBundle?: string } }> }).webhooks[0]!.clientConfig.caBundle = '';
    api.put('mutatingwebhookconfigurations', mwc);
    await eventually(() => (api.get('mutatingwebhookconfigurations', 'mirrorgate') as unknown as { webhooks: Array<{ clientConfig: { caBundle?: string } }> }).webhooks[0]!.clientConfig.caBundle === b64(decoded(api, 'ca.crt')), 5000, 'caBundle restored');
  });

  it('renews the serving certificate before expiry, keeps the CA, and swaps it without a restart', async () => {
    const api = await cluster();
    const clock = new ManualClock(Date.now());
    const wh = await run(api, clock);
    const ca = decoded(api, 'ca.crt');
    const first = decoded(api, 'tls.crt');
    clock.advance(340 * DAY); // default validity 365 days, renewal 30 days before
    await eventually(() => decoded(api, 'tls.crt') !== first, 5000, 'a renewed certificate');
    expect(decoded(api, 'ca.crt')).toBe(ca);
    const renewed = new X509Certificate(decoded(api, 'tls.crt')).serialNumber;
    const served = () =>
      new Promise<string>((resolve, reject) => {
        // The renewed certificate starts at the test clock's (future) time, so only its identity is compared here.
        const s = connect({ port: wh.port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false }, () => {
          resolve(s.getPeerX509Certificate()!.serialNumber);
          s.end();
        });
        s.on('error', reject);
      });
    await eventually(async () => (await served()) === renewed, 5000, 'the renewed certificate served');
  });
});

describe('pull secret sync', () => {
  it('copies the pull secret into opted-in namespaces, follows opt-in/opt-out and rotation, leaves foreign Secrets alone', async () => {
    const api = await cluster();
    api.put('namespaces', { metadata: { name: 'team-c', labels: { 'mirrorgate.io/mirror': 'enabled' } } });
    api.put('secrets', { metadata: { name: 'mirrorgate-pull-secret', namespace: 'team-c' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{"auths":{}}') } });
    const wh = await run(api);
    const sync = wh.pullSecretSync!;

    await eventually(() => secretData(api, 'team-a')?.['.dockerconfigjson'] === dockerConfig('one')['.dockerconfigjson'], 5000, 'copy in team-a');
    const copy = api.get('secrets', 'mirrorgate-pull-secret', 'team-a')!;
    expect(copy.type).toBe('kubernetes.io/dockerconfigjson');
    expect(copy.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'mirrorgate', 'mirrorgate.io/copy-of': 'mirrorgate-pull-secret' });
    expect(api.get('secrets', 'mirrorgate-pull-secret', 'team-b')).toBeUndefined();
    await sync.idle();
    expect(secretData(api, 'team-c')?.['.dockerconfigjson']).toBe(b64('{"auths":{}}'));

    // Opt in.
    api.put('namespaces', { metadata: { name: 'team-b', labels: { 'mirrorgate.io/mirror': 'enabled' } } });
    await eventually(() => secretData(api, 'team-b'), 5000, 'copy in team-b');

    // Rotation.
    const src = api.get('secrets', 'mirrorgate-pull-secret', NS)!;
    api.put('secrets', { ...src, data: dockerConfig('two') });
    await eventually(() => secretData(api, 'team-a')?.['.dockerconfigjson'] === dockerConfig('two')['.dockerconfigjson'], 5000, 'rotation to team-a');
    await eventually(() => secretData(api, 'team-b')?.['.dockerconfigjson'] === dockerConfig('two')['.dockerconfigjson'], 5000, 'rotation to team-b');

    // Opt out.
    api.put('namespaces', { metadata: { name: 'team-a', labels: {} } });
    await eventually(() => api.get('secrets', 'mirrorgate-pull-secret', 'team-a') === undefined, 5000, 'copy removed from team-a');

    // A copy deleted by someone comes back.
    api.remove('secrets', 'mirrorgate-pull-secret', 'team-b');
    await eventually(() => secretData(api, 'team-b'), 5000, 'copy recreated in team-b');

    await sync.idle();
    expect(secretData(api, 'team-c')?.['.dockerconfigjson']).toBe(b64('{"auths":{}}'));
    expect(api.list('secrets', NS).map((s) => s.metadata.name).sort()).toEqual(['mirrorgate-pull-secret', 'mirrorgate-webhook-tls']);
  });

  it('restarts its informers with backoff after watch failures and an expired resourceVersion', async () => {
    const api = await cluster();
    await run(api);
    await eventually(() => secretData(api, 'team-a'), 5000, 'first copy');

    api.failListsAndWatches = 6;
    api.compact();
    api.endWatches();
    api.put('namespaces', { metadata: { name: 'team-d', labels: { 'mirrorgate.io/mirror': 'enabled' } } });
    await eventually(() => secretData(api, 'team-d'), 10_000, 'copy after the informers recovered');
    expect(api.failListsAndWatches).toBe(0);
    expect(api.requests.filter((r) => r.method === 'GET' && r.query.includes('watch=true')).length).toBeGreaterThan(3);
  });
});
