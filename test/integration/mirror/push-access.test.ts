import bcrypt from 'bcryptjs';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { generateBytes, MediaTypes, pushImage, sha256, type PushedImage } from '../../helpers/images.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { registryClient, type Call, type RegistryAnswer } from '../../helpers/registry-client.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';

/**
 * Access rules on hosted repositories (`mirror.access`), each action allowed and denied per rule: anonymous
 * clients get 401 with the Basic challenge, wrong passwords 401, valid users without the right 403 DENIED.
 * And content is scoped to repositories: a blob of a repository a user may not read is not readable through
 * one they may read, by digest or by a mount `from` it.
 */
const cleanup = new Cleanup();
const REALM = 'mirrorgate access';
const PASSWORDS: Record<string, string> = { alice: 'alice-pw-1', bob: 'bob-pw-2', carol: 'carol-pw-3', dave: 'dave-pw-4', erin: 'erin-pw-5', frank: 'frank-pw-6' };
let hub: HubFront;
let mirror: TestMirror;
let call: Call;
let proxied: PushedImage;

const OCTET = { 'content-type': 'application/octet-stream' };
const as = (user: string): { creds: string } => ({ creds: `${user}:${PASSWORDS[user]}` });
const ANON = {};
const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
const manifestOf = (blobs: { digest: string; size: number }[], note = ''): Buffer =>
  Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: sha256(config), size: config.length },
      layers: blobs.map((b) => ({ mediaType: MediaTypes.ociLayer, ...b })),
      annotations: { note },
    }),
  );

async function pushBlob(user: string, repo: string, bytes: Buffer): Promise<RegistryAnswer> {
  return call('POST', `/v2/${repo}/blobs/uploads/`, { ...as(user), query: { digest: sha256(bytes) }, headers: OCTET, body: bytes });
}

async function pushManifest(user: string, repo: string, tag: string, bytes: Buffer): Promise<RegistryAnswer> {
  return call('PUT', `/v2/${repo}/manifests/${tag}`, { ...as(user), headers: { 'content-type': MediaTypes.ociManifest }, body: bytes });
}

/** The three actions a rule grants, each tried once on `repo`. */
async function tryActions(who: { creds?: string }, repo: string, tag: string): Promise<Record<'pull' | 'push' | 'delete', RegistryAnswer>> {
  return {
    pull: await call('GET', `/v2/${repo}/manifests/${tag}`, { ...who, headers: { accept: MediaTypes.ociManifest } }),
    push: await call('POST', `/v2/${repo}/blobs/uploads/`, who),
    delete: await call('DELETE', `/v2/${repo}/manifests/no-such-tag`, who),
  };
}

/** `ok`, or the status and error code (just the status for a HEAD, which has no body). */
const outcome = (r: RegistryAnswer): string => (r.status < 400 ? 'ok' : r.body.length === 0 ? String(r.status) : `${r.status} ${r.code()}`);

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  proxied = await pushImage(registry.url, 'library/base', '1', { layers: [4000], format: 'oci', seed: 'access-base' });
  hub = cleanup.add(await startHubFront({ target: registry.url }));
  const dir = cleanup.add(await makeTempDir('mirrorgate-access-'));
  const htpasswd = join(dir.path, 'htpasswd');
  writeFileSync(htpasswd, Object.entries(PASSWORDS).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 6)}\n`).join(''));
  mirror = cleanup.add(
    await startMirror({
      upstreams: { 'docker.io': hub.url },
      config: {
        mirror: {
          auth: { htpasswd, realm: REALM, anonymousRead: true },
          hosted: { repositories: ['team-a/**', 'team-b/**', 'public/**'] },
          access: {
            groups: { ops: ['dave'] },
            rules: [
              { users: ['alice'], repositories: ['team-a/**'], actions: ['pull', 'push', 'delete'] },
              { users: ['bob'], repositories: ['team-a/**'], actions: ['pull'] },
              { users: ['carol'], repositories: ['team-a/**'], actions: ['push'] },
              { groups: ['ops'], repositories: ['team-a/**'], actions: ['delete'] },
              { users: ['frank'], repositories: ['team-b/**', 'public/**'], actions: ['pull', 'push', 'delete'] },
              { users: ['anonymous'], repositories: ['public/**'], actions: ['pull'] },
            ],
          },
        },
      },
    }),
  );
  call = registryClient(mirror.url);
  // Content to act on: team-a/app:v1 (alice), team-b/secret:v1 (frank), public/tools:v1 (frank).
  for (const [user, repo] of [['alice', 'team-a/app'], ['frank', 'team-b/secret'], ['frank', 'public/tools']] as const) {
    expect((await pushBlob(user, repo, config)).status).toBe(201);
    expect((await pushManifest(user, repo, 'v1', manifestOf([]))).status).toBe(201);
  }
}, 120_000);

afterAll(() => cleanup.run());

describe('each action, allowed and denied per rule', () => {
  it('alice (pull, push, delete on team-a/**): all three on team-a, none on team-b', async () => {
    const a = await tryActions(as('alice'), 'team-a/app', 'v1');
    expect([outcome(a.pull), outcome(a.push), outcome(a.delete)]).toEqual(['ok', 'ok', '404 MANIFEST_UNKNOWN']);
    const b = await tryActions(as('alice'), 'team-b/secret', 'v1');
    expect([outcome(b.pull), outcome(b.push), outcome(b.delete)]).toEqual(['403 DENIED', '403 DENIED', '403 DENIED']);
    expect(outcome(await call('GET', '/v2/team-b/secret/tags/list', as('alice')))).toBe('403 DENIED');
  });

  it('bob (pull): reads team-a, may not push or delete', async () => {
    const a = await tryActions(as('bob'), 'team-a/app', 'v1');
    expect([outcome(a.pull), outcome(a.push), outcome(a.delete)]).toEqual(['ok', '403 DENIED', '403 DENIED']);
    expect(outcome(await pushManifest('bob', 'team-a/app', 'v1', manifestOf([], 'bob')))).toBe('403 DENIED');
    expect(outcome(await call('DELETE', `/v2/team-a/app/blobs/${sha256(config)}`, as('bob')))).toBe('403 DENIED');
    expect(outcome(await call('GET', '/v2/team-a/app/tags/list', as('bob')))).toBe('ok');
  });

  it('carol (push): pushes blobs and manifests to team-a, may not read or delete them', async () => {
    const a = await tryActions(as('carol'), 'team-a/app', 'v1');
    expect([outcome(a.pull), outcome(a.push), outcome(a.delete)]).toEqual(['403 DENIED', 'ok', '403 DENIED']);
    expect((await pushBlob('carol', 'team-a/carol', config)).status).toBe(201);
    expect((await pushManifest('carol', 'team-a/carol', 'v1', manifestOf([]))).status).toBe(201);
    expect(outcome(await call('HEAD', `/v2/team-a/carol/blobs/${sha256(config)}`, as('carol')))).toMatch(/^403/);
    expect(outcome(await call('GET', '/v2/team-a/carol/manifests/v1', as('bob')))).toBe('ok');
  });

  it('dave (delete, through the group ops): deletes in team-a, may not read or push', async () => {
    const a = await tryActions(as('dave'), 'team-a/app', 'v1');
    expect([outcome(a.pull), outcome(a.push), outcome(a.delete)]).toEqual(['403 DENIED', '403 DENIED', '404 MANIFEST_UNKNOWN']);
    expect(outcome(await call('DELETE', '/v2/team-a/carol/manifests/v1', as('dave')))).toBe('ok');
    expect(outcome(await call('GET', '/v2/team-a/carol/manifests/v1', as('alice')))).toBe('404 MANIFEST_UNKNOWN');
  });

  it('erin (a valid user no rule names): 403 DENIED on every hosted action; pulls proxied repositories; never pushes to them', async () => {
    for (const repo of ['team-a/app', 'team-b/secret', 'public/tools']) {
      const a = await tryActions(as('erin'), repo, 'v1');
      expect([outcome(a.pull), outcome(a.push), outcome(a.delete)], repo).toEqual(['403 DENIED', '403 DENIED', '403 DENIED']);
    }
    expect(outcome(await call('GET', '/v2/library/base/manifests/1', { ...as('erin'), headers: { accept: MediaTypes.ociManifest } }))).toBe('ok');
    expect(outcome(await call('POST', '/v2/library/base/blobs/uploads/', as('erin')))).toBe('403 DENIED');
    expect(outcome(await call('DELETE', `/v2/library/base/manifests/${proxied.digest}`, as('erin')))).toBe('405 UNSUPPORTED');
  });

  it('anonymous (anonymousRead, a rule for public/**): pulls public and proxied repositories; everything else is 401 with the Basic challenge', async () => {
    const pub = await tryActions(ANON, 'public/tools', 'v1');
    expect(outcome(pub.pull)).toBe('ok');
    expect(outcome(await call('GET', '/v2/library/base/manifests/1', { headers: { accept: MediaTypes.ociManifest } }))).toBe('ok');
    const denied = [pub.push, pub.delete, ...Object.values(await tryActions(ANON, 'team-a/app', 'v1')), await call('GET', '/v2/team-a/app/tags/list')];
    for (const r of denied) {
      expect(outcome(r)).toBe('401 UNAUTHORIZED');
      expect(r.header('www-authenticate')).toBe(`Basic realm="${REALM}"`);
    }
  });

  it('a wrong password, or an unknown user: 401 with the challenge, on reads and writes alike, even where anonymous may read', async () => {
    for (const creds of ['alice:wrong', 'nobody:alice-pw-1', `alice:${PASSWORDS.bob}`]) {
      for (const r of Object.values(await tryActions({ creds }, 'team-a/app', 'v1')).concat(await call('GET', '/v2/public/tools/manifests/v1', { creds }))) {
        expect(outcome(r), creds).toBe('401 UNAUTHORIZED');
        expect(r.header('www-authenticate'), creds).toBe(`Basic realm="${REALM}"`);
      }
    }
  });

  it('the catalog lists only what the caller may pull', async () => {
    const names = async (who: { creds?: string }): Promise<string[]> => (await call('GET', '/v2/_catalog', who)).json<{ repositories: string[] }>().repositories;
    expect(await names(as('alice'))).toEqual(expect.arrayContaining(['team-a/app', 'library/base']));
    expect(await names(as('alice'))).not.toContain('team-b/secret');
    expect(await names(as('frank'))).toEqual(expect.arrayContaining(['team-b/secret', 'public/tools']));
    expect(await names(as('frank'))).not.toContain('team-a/app');
    expect((await names(as('erin'))).filter((n) => !n.startsWith('library/'))).toEqual([]);
    expect((await names(ANON)).filter((n) => !n.startsWith('library/'))).toEqual(['public/tools']);
  });
});

describe('content stays in the repositories that hold it', () => {
  const secret = generateBytes('team-b-secret-layer', 20_000);
  const S = sha256(secret);
  let secretManifest: Buffer;

  beforeAll(async () => {
    expect((await pushBlob('frank', 'team-b/secret', secret)).status).toBe(201);
    secretManifest = manifestOf([{ digest: S, size: secret.length }], 'secret');
    expect((await pushManifest('frank', 'team-b/secret', 'v2', secretManifest)).status).toBe(201);
  });

  it('by digest: a blob and a manifest of team-b are not readable through team-a, nor through a proxied name', async () => {
    for (const method of ['GET', 'HEAD']) {
      expect(outcome(await call(method, `/v2/team-b/secret/blobs/${S}`, as('alice'))), method).toMatch(/^403/);
      const r = await call(method, `/v2/team-a/app/blobs/${S}`, as('alice'));
      expect(r.status, method).toBe(404);
      expect(r.body.includes(secret.subarray(0, 64))).toBe(false);
    }
    expect(outcome(await call('GET', `/v2/team-a/app/manifests/${sha256(secretManifest)}`, as('alice')))).toBe('404 MANIFEST_UNKNOWN');
    expect((await call('GET', `/v2/team-a/app/referrers/${sha256(secretManifest)}`, as('alice'))).json<{ manifests: unknown[] }>().manifests).toEqual([]);
    // A proxied repository asks its upstream, which does not have it.
    hub.reset();
    expect((await call('GET', `/v2/library/base/blobs/${S}`, as('alice'))).status).toBe(404);
    expect((await call('GET', `/v2/library/base/blobs/${S}`, ANON)).status).toBe(404);
    // Nor can a manifest pushed to team-a claim it.
    expect(outcome(await pushManifest('alice', 'team-a/app', 'steal', manifestOf([{ digest: S, size: secret.length }])))).toBe('404 MANIFEST_BLOB_UNKNOWN');
  });

  it('by mount: from a repository the user may not read, a mount is a plain upload and the blob stays unreadable; the owner\'s own mount works', async () => {
    const mount = await call('POST', '/v2/team-a/app/blobs/uploads/', { ...as('alice'), query: { mount: S, from: 'team-b/secret' } });
    expect(mount.status).toBe(202);
    expect(mount.header('location')).toMatch(/^\/v2\/team-a\/app\/blobs\/uploads\/[0-9a-f]{32}$/);
    expect((await call('GET', `/v2/team-a/app/blobs/${S}`, as('alice'))).status).toBe(404);
    // carol may push to team-a but not read it: mounting from team-a is not a way to read it either.
    const own = sha256(config);
    const carol = await call('POST', '/v2/team-a/carol2/blobs/uploads/', { ...as('carol'), query: { mount: own, from: 'team-a/app' } });
    expect(carol.status).toBe(202);
    expect((await call('HEAD', `/v2/team-a/carol2/blobs/${own}`, as('alice'))).status).toBe(404);
    // From a proxied repository that does not hold it: a plain upload too.
    expect((await call('POST', '/v2/team-a/app/blobs/uploads/', { ...as('alice'), query: { mount: S, from: 'library/base' } })).status).toBe(202);
    // The same mount by someone who may read the source.
    const frank = await call('POST', '/v2/team-b/copy/blobs/uploads/', { ...as('frank'), query: { mount: S, from: 'team-b/secret' } });
    expect(frank.status).toBe(201);
    expect(sha256((await call('GET', `/v2/team-b/copy/blobs/${S}`, as('frank'))).body)).toBe(S);
  });

  it('a mount into a repository the user may not push to is refused outright', async () => {
    expect(outcome(await call('POST', '/v2/team-b/mine/blobs/uploads/', { ...as('alice'), query: { mount: sha256(config), from: 'team-a/app' } }))).toBe('403 DENIED');
    expect(outcome(await call('POST', '/v2/team-a/x/blobs/uploads/', { ...as('bob'), query: { mount: sha256(config), from: 'team-a/app' } }))).toBe('403 DENIED');
  });
});
