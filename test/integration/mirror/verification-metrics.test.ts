import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerRegistry, type DockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { fetchAll } from '../../helpers/http.js';
import { generateBytes, MediaTypes, pushBlob, pushImage, sha256 } from '../../helpers/images.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { Cleanup } from '../../helpers/tmp.js';

/** `mirrorgate_upstream_verification_failures_total`: what an alert on corrupt upstream content reads. */
const cleanup = new Cleanup();
let registry: DockerRegistry;
let hub: HubFront;
let mirror: TestMirror;

beforeAll(async () => {
  registry = cleanup.add(await startDockerRegistry());
  hub = cleanup.add(await startHubFront({ target: registry.url }));
  mirror = cleanup.add(await startMirror({ upstreams: { 'docker.io': hub.url } }));
}, 60_000);

afterAll(() => cleanup.run());

/** The counter's value for a kind, as a scrape of /metrics shows it (0 when it has no series yet). */
async function failures(kind: 'blob' | 'manifest'): Promise<number> {
  const text = (await fetchAll(`${mirror.url}/metrics`)).body.toString();
  const m = new RegExp(`^mirrorgate_upstream_verification_failures_total\\{upstream="docker.io",kind="${kind}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function eventuallyCounts(kind: 'blob' | 'manifest', n: number): Promise<void> {
  for (let i = 0; i < 100 && (await failures(kind)) !== n; i++) await new Promise((r) => setTimeout(r, 20));
  expect(await failures(kind)).toBe(n);
}

describe('upstream content that fails verification', () => {
  it('counts a corrupt cold blob once per download, and nothing for a good one', async () => {
    const good = await pushBlob(registry.url, 'library/verify', generateBytes('good', 200_000));
    expect(sha256((await fetchAll(`${mirror.url}/v2/library/verify/blobs/${good.digest}`)).body)).toBe(good.digest);
    expect(await failures('blob')).toBe(0);

    const bad = await pushBlob(registry.url, 'library/verify', generateBytes('bad', 200_000));
    hub.faults.push({ match: { kind: 'blob', method: 'GET' }, action: { type: 'corrupt' } });
    const corrupt = await fetchAll(`${mirror.url}/v2/library/verify/blobs/${bad.digest}`);
    expect(corrupt.broken).toBe(true);
    await eventuallyCounts('blob', 1);
    // The next download gets the real bytes and counts nothing.
    expect(sha256((await fetchAll(`${mirror.url}/v2/library/verify/blobs/${bad.digest}`)).body)).toBe(bad.digest);
    await eventuallyCounts('blob', 1);
  });

  it('counts a manifest whose bytes do not match its digest', async () => {
    const image = await pushImage(registry.url, 'library/verify', 'v1', { layers: [100], format: 'oci', seed: 'verify-manifest' });
    hub.faults.push({ match: { kind: 'manifest', method: 'GET' }, action: { type: 'corrupt' } });
    const refused = await fetchAll(`${mirror.url}/v2/library/verify/manifests/v1`, { accept: MediaTypes.ociManifest });
    expect(refused.status).toBe(502);
    expect(await failures('manifest')).toBe(1);
    const served = await fetchAll(`${mirror.url}/v2/library/verify/manifests/v1`, { accept: MediaTypes.ociManifest });
    expect(sha256(served.body)).toBe(image.digest);
    expect(await failures('manifest')).toBe(1);
  });
});
