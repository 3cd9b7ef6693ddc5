import { writeFileSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerRegistry, type DockerRegistry } from '../../helpers/docker-registry.js';
import { MediaTypes, sha256 } from '../../helpers/images.js';
import { startMirror } from '../../helpers/mirror.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';

const cleanup = new Cleanup();
let registry: DockerRegistry;
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 }, layers: [] }));
const authHeader = `Basic ${Buffer.from('pusher:push-pass').toString('base64')}`;

beforeAll(async () => {
  const dir = cleanup.add(await makeTempDir('mirrorgate-htpasswd-'));
  const file = path.join(dir.path, 'htpasswd');
  writeFileSync(file, `pusher:${bcrypt.hashSync('push-pass', 4)}\n`);
  registry = cleanup.add(await startDockerRegistry({ htpasswd: file }));
  // Push the empty config and a manifest with Basic auth, as a user would.
  const start = await request(`${registry.url}/v2/team/tool/blobs/uploads/`, { method: 'POST', headers: { authorization: authHeader } });
  await start.body.dump();
  const location = new URL(start.headers.location as string, registry.url);
  location.searchParams.set('digest', sha256('{}'));
  const put = await request(location, { method: 'PUT', headers: { authorization: authHeader, 'content-type': 'application/octet-stream' }, body: '{}' });
  await put.body.dump();
  expect(put.statusCode).toBe(201);
  const m = await request(`${registry.url}/v2/team/tool/manifests/v1`, { method: 'PUT', headers: { authorization: authHeader, 'content-type': MediaTypes.ociManifest }, body: manifest });
  await m.body.dump();
  expect(m.statusCode).toBe(201);
}, 60_000);

afterAll(() => cleanup.run());

describe('an upstream that answers with Basic challenges (the reference registry with htpasswd)', () => {
  it('answers the challenge with the configured credentials', async () => {
    const mirror = cleanup.add(await startMirror({ upstreams: { 'docker.io': { url: registry.url, credentials: { username: { value: 'pusher' }, password: { value: 'push-pass' } } } } }));
    const res = await request(`${mirror.url}/v2/team/tool/manifests/v1`, { headers: { accept: MediaTypes.ociManifest } });
    expect(res.statusCode).toBe(200);
    expect(Buffer.from(await res.body.arrayBuffer()).equals(manifest)).toBe(true);
    const blob = await request(`${mirror.url}/v2/team/tool/blobs/${sha256('{}')}`);
    expect(await blob.body.text()).toBe('{}');
  });

  it('without credentials the client gets a clear error and nothing is cached', async () => {
    const mirror = cleanup.add(await startMirror({ upstreams: { 'docker.io': registry.url } }));
    const res = await request(`${mirror.url}/v2/team/tool/manifests/v1`, { headers: { accept: MediaTypes.ociManifest } });
    expect(res.statusCode).toBe(404);
    const body = (await res.body.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]!.code).toBe('MANIFEST_UNKNOWN');
    expect(body.errors[0]!.message).toMatch(/denied access/);
  });
});
