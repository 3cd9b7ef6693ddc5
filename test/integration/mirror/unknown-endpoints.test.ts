import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';

/** Paths under /v2 that name no endpoint are 404 with the spec's envelope; writes on real endpoints stay 405. */
let mirror: TestMirror;
const D = `sha256:${'a'.repeat(64)}`;

beforeAll(async () => {
  // Never contacted: none of these requests reach an upstream.
  mirror = await startMirror({ upstreams: { 'docker.io': 'http://127.0.0.1:9' } });
});

afterAll(() => mirror.stop());

async function answer(method: string, path: string): Promise<{ status: number; code: string | undefined; api: unknown }> {
  const res = await request(`${mirror.url}${path}`, { method: method as 'GET' });
  const text = await res.body.text();
  const code = text ? (JSON.parse(text) as { errors: { code: string }[] }).errors[0]?.code : undefined;
  return { status: res.statusCode, code, api: res.headers['docker-distribution-api-version'] };
}

describe('unknown endpoints under /v2', () => {
  it.each([
    ['GET', '/v2/library/t/manifests/1/'],
    ['GET', '/V2/library/t/manifests/1'],
    ['GET', '/v2/x/unknownthing'],
    ['GET', '/v2/library/t/tags/list/'],
    ['GET', `/v2/library/t/blobs/${D}/x`],
    ['PUT', '/v2/x/unknownthing'],
    ['DELETE', '/v2/library/t/manifests/1/'],
  ])('%s %s is 404 with the error envelope', async (method, path) => {
    expect(await answer(method, path)).toEqual({ status: 404, code: 'UNSUPPORTED', api: 'registry/2.0' });
  });

  it('answers HEAD on an unknown endpoint 404 without a body', async () => {
    const res = await request(`${mirror.url}/v2/x/unknownthing`, { method: 'HEAD' });
    expect(res.statusCode).toBe(404);
    expect(await res.body.text()).toBe('');
  });

  it.each([
    ['PUT', '/v2/library/t/manifests/1', 403, 'DENIED'],
    ['DELETE', `/v2/library/t/manifests/${D}`, 405, 'UNSUPPORTED'],
    ['POST', '/v2/library/t/blobs/uploads/', 403, 'DENIED'],
    ['PATCH', '/v2/library/t/blobs/uploads/abc', 403, 'DENIED'],
    ['DELETE', `/v2/library/t/blobs/${D}`, 405, 'UNSUPPORTED'],
  ])('a write %s %s on a proxied repository: %i %s, never 404', async (method, path, status, code) => {
    expect(await answer(method, path)).toEqual({ status, code, api: 'registry/2.0' });
  });
});
