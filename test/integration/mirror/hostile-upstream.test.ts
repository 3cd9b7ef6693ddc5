import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RawConfig } from '../../../src/config/load.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHostileServer, sendJson, type HostileServer } from '../../helpers/hostile-upstream.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { MediaTypes, pushImage, sha256, type PushedImage } from '../../helpers/images.js';
import { captureLogs } from '../../helpers/log-capture.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { Cleanup, freePort } from '../../helpers/tmp.js';

/**
 * An upstream that attacks the mirror: redirects meant to steal its credentials or reach internal
 * addresses, bodies that are not what they claim, tag lists meant to exhaust memory or smuggle names.
 */
const cleanup = new Cleanup();
const USER = 'mirror-bot';
const PASSWORD = 'upstream-Secret-93f1';
const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
let hub: HubFront;
let image: PushedImage;
let other: PushedImage;
let registryUrl: string;
/** Where the attacks try to send the mirror: another host, on loopback. */
let evil: HostileServer;
/** An upstream that answers however a test says. */
let hostile: HostileServer;

const ACCEPT = [MediaTypes.ociIndex, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.dockerManifest].join(', ');

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  registryUrl = registry.url;
  image = await pushImage(registry.url, 'private/app', '1', { layers: [5000], format: 'oci', seed: 'hostile-upstream' });
  other = await pushImage(registry.url, 'private/other', '1', { layers: [3000], format: 'oci', seed: 'hostile-other' });
  for (let i = 0; i < 7; i++) await pushImage(registry.url, 'library/paged', `t${i}`, { layers: [100], format: 'docker', seed: `hostile-paged${i}` });
  hub = cleanup.add(await startHubFront({ target: registry.url, credentials: { username: USER, password: PASSWORD } }));
  evil = cleanup.add(await startHostileServer());
  hostile = cleanup.add(await startHostileServer());
}, 60_000);

afterAll(() => cleanup.run());

beforeEach(() => {
  hub.faults.length = 0;
  hub.reset();
  evil.requests.length = 0;
  evil.handle = (_req, res) => sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'evil' }] });
  hostile.requests.length = 0;
});

async function mirrorOf(upstream: RawConfig, logger = captureLogs().logger): Promise<TestMirror> {
  return cleanup.add(await startMirror({ upstreams: { 'docker.io': upstream }, logger }));
}

const credentials = { username: { value: USER }, password: { value: PASSWORD } };

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, text: body.toString('utf8') };
}

function storedManifests(mirror: TestMirror): string[] {
  const dir = path.join(mirror.storage.path, 'manifests');
  return existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).filter((f) => /[a-f0-9]{64}$/.test(f)) : [];
}

describe('upstream credentials and redirects to other hosts', () => {
  it('never sends credentials to a host a blob was redirected to, nor takes its token realm', async () => {
    const mirror = await mirrorOf({ url: hub.url, credentials, allowPrivateRedirects: true });
    // A first pull: the mirror knows the upstream's realm and holds a token.
    expect((await get(`${mirror.url}/v2/private/app/manifests/1`, { accept: ACCEPT })).status).toBe(200);
    // The redirect target challenges with a realm of its own, hoping for the upstream's credentials.
    evil.handle = (req, res) => {
      if (req.url?.startsWith('/token')) sendJson(res, 200, { token: 'from-evil', expires_in: 3600 });
      else sendJson(res, 401, { errors: [{ code: 'UNAUTHORIZED' }] }, { 'www-authenticate': `Bearer realm="${evil.url}/token",service="evil",scope="repository:private/app:pull"` });
    };
    hub.faults.push({ match: { kind: 'blob', method: 'GET' }, action: { type: 'status', status: 307, headers: { location: `${evil.url}/cdn/blob` }, body: '' } });

    const blob = await get(`${mirror.url}/v2/private/app/blobs/${image.layers[0]!.digest}`);
    expect(blob.status).not.toBe(200);
    expect(evil.requests.length).toBeGreaterThan(0);
    expect(evil.requests.every((r) => r.authorization === undefined)).toBe(true);
    expect(evil.requests.some((r) => r.path.startsWith('/token'))).toBe(false);

    // Later tokens (another repository, so a new one is needed) still come from the upstream's own realm.
    hub.reset();
    evil.requests.length = 0;
    const m = await get(`${mirror.url}/v2/private/other/manifests/1`, { accept: ACCEPT });
    expect(m.status).toBe(200);
    expect(m.headers['docker-content-digest']).toBe(other.digest);
    expect(hub.count({ kind: 'token' })).toBeGreaterThan(0);
    expect(evil.requests).toEqual([]);
  });

  it('sends credentials only to the configured token realm', async () => {
    const pinned = await mirrorOf({ url: hub.url, credentials, tokenRealm: `${evil.url}/token` });
    const refused = await get(`${pinned.url}/v2/private/app/manifests/1`, { accept: ACCEPT });
    expect(refused.status).toBe(502);
    expect(refused.text).not.toContain(evil.url);
    expect(hub.count({ kind: 'token' })).toBe(0);
    expect(evil.requests).toEqual([]);

    const matching = await mirrorOf({ url: hub.url, credentials, tokenRealm: `${hub.url}/token` });
    const ok = await get(`${matching.url}/v2/private/app/manifests/1`, { accept: ACCEPT });
    expect(ok.status).toBe(200);
    expect(ok.headers['docker-content-digest']).toBe(image.digest);
  });
});

describe('redirects from an upstream', () => {
  it('are not followed for manifests, even with private redirects allowed; nothing is stored', async () => {
    hostile.handle = (_req, res) => {
      res.writeHead(302, { location: `${evil.url}/internal/secret`, 'content-length': 0 });
      res.end();
    };
    evil.handle = (_req, res) => sendJson(res, 200, { secret: 'internal-only' }, { 'content-type': MediaTypes.dockerManifest });
    for (const allowPrivateRedirects of [false, true]) {
      const mirror = await mirrorOf({ url: hostile.url, allowPrivateRedirects });
      const connections = evil.connections;
      const res = await get(`${mirror.url}/v2/library/app/manifests/1`, { accept: ACCEPT });
      expect(res.status).toBe(502);
      expect(res.text).not.toContain('internal-only');
      expect(evil.connections).toBe(connections);
      expect(storedManifests(mirror)).toEqual([]);
    }
  });

  it('are followed for every request of an upstream with redirects: all, and what they lead to is still checked', async () => {
    const manifest = image.manifestBytes;
    let body: Buffer = Buffer.from(JSON.stringify({ secret: 'internal-only' }));
    hostile.handle = (_req, res) => {
      res.writeHead(307, { location: `${evil.url}/backend/manifest`, 'content-length': 0 });
      res.end();
    };
    evil.handle = (_req, res) => {
      res.writeHead(200, { 'content-type': MediaTypes.ociManifest, 'content-length': body.length });
      res.end(body);
    };
    const mirror = await mirrorOf({ url: hostile.url, redirects: 'all', allowPrivateRedirects: true });
    const refused = await get(`${mirror.url}/v2/library/app/manifests/1`, { accept: ACCEPT });
    expect(refused.status).toBe(502);
    expect(storedManifests(mirror)).toEqual([]);
    body = manifest;
    const served = await get(`${mirror.url}/v2/library/app/manifests/1`, { accept: ACCEPT });
    expect(served.status).toBe(200);
    expect(served.body.equals(manifest)).toBe(true);
    // Still no redirect to a loopback address without allowPrivateRedirects.
    const strict = await mirrorOf({ url: hostile.url, redirects: 'all' });
    const connections = evil.connections;
    expect((await get(`${strict.url}/v2/library/app/manifests/2`, { accept: ACCEPT })).status).toBe(502);
    expect(evil.connections).toBe(connections);
  });

  it('are not followed for blobs to plain http, loopback or names that resolve to loopback, unless allowed', async () => {
    const blob = image.layers[0]!;
    const bytes = (await get(`${registryUrl}/v2/private/app/blobs/${blob.digest}`)).body;
    evil.handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
      res.end(bytes);
    };
    let target = '';
    hostile.handle = (_req, res) => {
      res.writeHead(307, { location: target, 'content-length': 0 });
      res.end();
    };
    const strict = await mirrorOf({ url: hostile.url });
    for (const t of [`${evil.url}/blob`, `https://127.0.0.1:${evil.port}/blob`, `https://localhost:${evil.port}/blob`, `https://[::ffff:127.0.0.1]:${evil.port}/blob`, `https://2130706433:${evil.port}/blob`, 'https://169.254.169.254/latest/meta-data/']) {
      target = t;
      const connections = evil.connections;
      const res = await get(`${strict.url}/v2/library/app/blobs/${blob.digest}`);
      expect(res.status, t).toBe(502);
      expect(JSON.parse(res.text)).toMatchObject({ errors: [{ code: 'UNAVAILABLE' }] });
      expect(res.text).not.toContain(String(evil.port));
      expect(evil.connections, t).toBe(connections);
    }

    // An upstream on a private network may send its blobs there when its configuration says so.
    target = `${evil.url}/blob`;
    const allowed = await mirrorOf({ url: hostile.url, allowPrivateRedirects: true });
    const res = await get(`${allowed.url}/v2/library/app/blobs/${blob.digest}`);
    expect(res.status).toBe(200);
    expect(sha256(res.body)).toBe(blob.digest);
  });

  it('error bodies name no internal address or connection error; the log has them', async () => {
    const closed = await freePort();
    const logs = captureLogs();
    const down = await mirrorOf({ url: `http://127.0.0.1:${closed}` }, logs.logger);
    const res = await get(`${down.url}/v2/library/app/manifests/1`, { accept: ACCEPT });
    expect(res.status).toBe(502);
    expect(res.text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|connect /);
    expect(res.text).not.toContain(String(closed));

    hostile.handle = (_req, res2) => {
      res2.writeHead(307, { location: `http://127.0.0.1:${closed}/blob`, 'content-length': 0 });
      res2.end();
    };
    const redirecting = await mirrorOf({ url: hostile.url, allowPrivateRedirects: true }, logs.logger);
    const blob = await get(`${redirecting.url}/v2/library/app/blobs/${image.config.digest}`);
    expect(blob.status).toBe(502);
    expect(blob.text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|connect /);
    expect(blob.text).not.toContain(String(closed));
    expect(logs.text()).toContain(`ECONNREFUSED 127.0.0.1:${closed}`);
  });
});

describe('manifests that are not manifests', () => {
  it('are refused and not stored, whatever media type the upstream claims', async () => {
    const mirror = await mirrorOf({ url: hostile.url });
    const bodies: [string, string][] = [
      [MediaTypes.dockerManifest, JSON.stringify({ hello: 'world' })],
      [MediaTypes.ociManifest, '<html><body>login page</body></html>'],
      [MediaTypes.ociIndex, JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: 'none' })],
      [MediaTypes.ociManifest, JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.dockerManifest, config: image.config, layers: [] })],
      [MediaTypes.ociManifest, JSON.stringify({ schemaVersion: 2, config: { mediaType: 'x', digest: '../../etc', size: 1 }, layers: [] })],
    ];
    for (const [contentType, body] of bodies) {
      hostile.handle = (_req, res) => sendJson(res, 200, body, { 'content-type': contentType, 'docker-content-digest': sha256(body) });
      // Asked by its own digest, so the digest check passes: only the shape can refuse it.
      const res = await get(`${mirror.url}/v2/library/app/manifests/${sha256(body)}`, { accept: ACCEPT });
      expect(res.status, body).toBe(502);
      expect(JSON.parse(res.text)).toMatchObject({ errors: [{ code: 'UNAVAILABLE' }] });
    }
    expect(storedManifests(mirror)).toEqual([]);
  });
});

describe('hostile tag lists', () => {
  const tagsOf = (text: string): string[] => (JSON.parse(text) as { tags: string[] }).tags;

  it('a tag list larger than the cap is refused without being read whole', async () => {
    const mirror = await mirrorOf({ url: hostile.url });
    const tag = 'a'.repeat(120);
    const chunk = Buffer.from(`"${tag}",`.repeat(8000));
    let sent = 0;
    hostile.handle = async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"name":"library/app","tags":[');
      // 10 MB, written only as fast as the mirror reads it.
      while (sent < 10_000_000 && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve).once('close', resolve));
      }
      res.end(`"${tag}"]}`);
    };
    const res = await get(`${mirror.url}/v2/library/app/tags/list`);
    expect(res.status).toBe(502);
    expect(sent).toBeLessThan(10_000_000);
  });

  it('drops tags that break the grammar, honours n and builds Link from validated values', async () => {
    const logs = captureLogs();
    const mirror = await mirrorOf({ url: hostile.url }, logs.logger);
    let link = '</v2/library/app/tags/list?n=99999999&last=%3Cscript%3E>; rel="next"';
    hostile.handle = (_req, res) =>
      sendJson(res, 200, { name: 'library/app', tags: ['v1', '../../etc', '<script>alert(1)</script>', 'v2', 7, 'x'.repeat(129), 'v4', 'v3'] }, { link });
    const two = await get(`${mirror.url}/v2/library/app/tags/list?n=2`);
    expect(two.status).toBe(200);
    expect(tagsOf(two.text)).toEqual(['v1', 'v2']);
    expect(two.headers.link).toBe('</v2/library/app/tags/list?n=2&last=v2>; rel="next"');
    expect(logs.lines().find((l) => l.msg === 'upstream tag list: entries that are not valid tags dropped')).toMatchObject({ dropped: 4 });

    // An upstream Link whose last is not a tag is dropped; one with a huge n is clamped.
    const all = await get(`${mirror.url}/v2/library/app/tags/list`);
    expect(tagsOf(all.text)).toEqual(['v1', 'v2', 'v3', 'v4']);
    expect(all.headers.link).toBeUndefined();
    link = '</v2/library/app/tags/list?n=99999999&last=v4>; rel="next"';
    const clamped = await get(`${mirror.url}/v2/library/app/tags/list`);
    expect(clamped.headers.link).toBe('</v2/library/app/tags/list?n=10000&last=v4>; rel="next"');
  });

  it('caps the tags of one answer when the client sends no n', async () => {
    const mirror = await mirrorOf({ url: hostile.url });
    const many = Array.from({ length: 10_001 }, (_, i) => `t${String(i).padStart(5, '0')}`);
    hostile.handle = (_req, res) => sendJson(res, 200, { name: 'library/app', tags: many });
    const res = await get(`${mirror.url}/v2/library/app/tags/list`);
    expect(tagsOf(res.text)).toEqual(many.slice(0, 10_000));
    expect(res.headers.link).toBe(`</v2/library/app/tags/list?n=10000&last=${many[9_999]}>; rel="next"`);
  });

  it("pages with n and last even when the upstream ignores them (Debian's registry does)", async () => {
    const mirror = await mirrorOf({ url: registryUrl });
    const p1 = await get(`${mirror.url}/v2/library/paged/tags/list?n=3`);
    expect(tagsOf(p1.text)).toEqual(['t0', 't1', 't2']);
    expect(p1.headers.link).toBe('</v2/library/paged/tags/list?n=3&last=t2>; rel="next"');
    const p2 = await get(`${mirror.url}/v2/library/paged/tags/list?n=3&last=t2`);
    expect(tagsOf(p2.text)).toEqual(['t3', 't4', 't5']);
    const p3 = await get(`${mirror.url}/v2/library/paged/tags/list?n=3&last=t5`);
    expect(tagsOf(p3.text)).toEqual(['t6']);
    expect(p3.headers.link).toBeUndefined();
  });
});
