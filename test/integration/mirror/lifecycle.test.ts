import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { pushBigBlob, sha256, type BlobRef } from '../../helpers/images.js';
import { startMirror } from '../../helpers/mirror.js';
import { Cleanup } from '../../helpers/tmp.js';

const cleanup = new Cleanup();
let hub: HubFront;
let blob: BlobRef;

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  blob = await pushBigBlob(registry.url, 'library/big', 6 * 1024 * 1024, 'lifecycle');
  hub = cleanup.add(await startHubFront({ target: registry.url }));
}, 60_000);

afterAll(() => cleanup.run());

describe('health, readiness and metrics', () => {
  it('answers /healthz, /readyz and /metrics', async () => {
    const mirror = cleanup.add(await startMirror({ upstreams: { 'docker.io': hub.url } }));
    const health = await request(`${mirror.url}/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
    const ready = await request(`${mirror.url}/readyz`);
    expect(await ready.body.json()).toEqual({ status: 'ready' });
    const cold = await request(`${mirror.url}/v2/library/big/blobs/${blob.digest}`);
    expect(sha256(Buffer.from(await cold.body.arrayBuffer()))).toBe(blob.digest);
    // Request metrics are recorded when the server sees the response close, just after the client has it, and
    // the download ends when the cache write commits, just after that.
    let metrics = '';
    const settled = (m: string): boolean => /mirrorgate_mirror_requests_total\{method="GET",kind="blob"/.test(m) && /mirrorgate_inflight_fetches 0/.test(m);
    for (let i = 0; i < 100 && !settled(metrics); i++) {
      await new Promise((r) => setTimeout(r, 20));
      metrics = await (await request(`${mirror.url}/metrics`)).body.text();
    }
    expect(metrics).toMatch(/mirrorgate_cache_lookups_total\{kind="blob",result="miss"\} 1/);
    expect(metrics).toMatch(new RegExp(`mirrorgate_bytes_served_total\\{kind="blob"\\} ${blob.size}`));
    expect(metrics).toMatch(/mirrorgate_mirror_requests_total\{method="GET",kind="blob",status="200"\} 1/);
    expect(metrics).toMatch(/mirrorgate_inflight_fetches 0/);
  });
});

describe('graceful shutdown', () => {
  it('finishes in-flight downloads before closing, then closes at once', async () => {
    const mirror = await startMirror({ upstreams: { 'docker.io': hub.url } });
    cleanup.add(mirror);
    hub.faults.push({ match: { kind: 'blob', method: 'GET' }, action: { type: 'stall', ms: 400 } });
    const res = await request(`${mirror.url}/v2/library/big/blobs/${blob.digest}`);
    expect(res.statusCode).toBe(200);
    const stopping = mirror.server.stop(10_000);
    const started = Date.now();
    const chunks: Buffer[] = [];
    for await (const c of res.body) chunks.push(c as Buffer);
    await stopping;
    expect(Date.now() - started).toBeLessThan(5_000); // closed when the download ended, not at the grace limit
    expect(sha256(Buffer.concat(chunks))).toBe(blob.digest);
    await expect(request(`${mirror.url}/readyz`)).rejects.toThrow();
  });
});
