import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/common/logger.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { MediaTypes, pushImage, type PushedImage } from '../../helpers/images.js';
import { startMirror } from '../../helpers/mirror.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';

const cleanup = new Cleanup();
const USER = 'mirror-bot';
const PASSWORD = 'pa55-Very-Secret-7d1e';
let hub: HubFront;
let image: PushedImage;
let secretsDir: string;

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  image = await pushImage(registry.url, 'private/app', '1', { layers: [1000], format: 'oci', seed: 'creds' });
  hub = cleanup.add(await startHubFront({ target: registry.url, credentials: { username: USER, password: PASSWORD }, tokenTtlSeconds: 60 }));
  secretsDir = cleanup.add(await makeTempDir('mirrorgate-secrets-')).path;
  writeFileSync(path.join(secretsDir, 'password'), `${PASSWORD}\n`);
}, 60_000);

afterAll(() => cleanup.run());

function capture(): { logger: ReturnType<typeof createLogger>; text: () => string } {
  let buf = '';
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      buf += chunk.toString();
      cb();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), text: () => buf };
}

describe('upstream credentials', () => {
  it('authenticates to the token endpoint with credentials from a file and the environment, and never logs them', async () => {
    const logs = capture();
    const mirror = cleanup.add(
      await startMirror({
        logger: logs.logger,
        upstreams: { 'docker.io': { url: hub.url, credentials: { username: { env: 'TEST_UPSTREAM_USER' }, password: { file: path.join(secretsDir, 'password') } } } },
        env: { TEST_UPSTREAM_USER: USER },
      }),
    );
    const res = await request(`${mirror.url}/v2/private/app/manifests/1`, { headers: { accept: MediaTypes.ociManifest, authorization: `Basic ${Buffer.from('client:client-secret').toString('base64')}` } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(image.digest);
    await res.body.dump();
    expect(hub.requests.some((r) => r.kind === 'token' && r.status === 200)).toBe(true);

    const text = logs.text();
    expect(text).toMatch(/upstream request/);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(Buffer.from(`${USER}:${PASSWORD}`).toString('base64'));
    expect(text).not.toContain('client-secret');
    expect(text).not.toContain(Buffer.from('client:client-secret').toString('base64'));
    expect(text.toLowerCase()).not.toMatch(/"authorization":"(basic|bearer) /);
  });

  it('reports wrong upstream credentials as an upstream problem, not a missing image', async () => {
    const mirror = cleanup.add(await startMirror({ upstreams: { 'docker.io': { url: hub.url, credentials: { username: { value: USER }, password: { value: 'wrong' } } } } }));
    const res = await request(`${mirror.url}/v2/private/app/manifests/1`, { headers: { accept: MediaTypes.ociManifest } });
    expect(res.statusCode).toBe(502);
    const body = (await res.body.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]!.message).toMatch(/refused the configured credentials/);
  });
});
