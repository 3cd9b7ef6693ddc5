import bcrypt from 'bcryptjs';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { pushImage, pushMultiArch, type PushedImage, type PushedIndex } from '../../helpers/images.js';
import { captureLogs } from '../../helpers/log-capture.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { podmanIn } from '../../helpers/podman.js';
import { readDirImage, skopeoCopy, skopeoInspectRaw, type SkopeoCopyOptions } from '../../helpers/skopeo.js';
import { testCa, writeCertDir, writeServingCert } from '../../helpers/test-certs.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';

/**
 * Real clients pushing to hosted repositories over TLS with Basic credentials, while Docker Hub images flow
 * through the same mirror: skopeo (multi-arch with `--all`, between hosted repositories, from a proxied
 * repository) and podman (login, pull through the mirror, push). The mirror's own request log tells which
 * requests the clients sent; the Docker Hub front's log tells what reached the upstream.
 */
const cleanup = new Cleanup();
const logs = captureLogs('info');
const USER = 'alice';
const PASSWORD = 'push-Secret-7';
const CREDS = `${USER}:${PASSWORD}`;
let hub: HubFront;
let mirror: TestMirror;
let certDir: string;
let multi: PushedIndex;
let base: PushedImage;

/** skopeo with verified TLS and credentials on both sides. */
function copy(src: string, dest: string, opts: SkopeoCopyOptions = {}) {
  const args = [...(opts.extraArgs ?? [])];
  if (dest.startsWith('docker://')) args.push('--dest-cert-dir', certDir);
  return skopeoCopy(src, dest, {
    throwOnError: true,
    timeoutMs: 120_000,
    ...(src.startsWith('docker://') ? { srcTlsVerify: true, srcCreds: CREDS, srcCertDir: certDir } : {}),
    ...(dest.startsWith('docker://') ? { destTlsVerify: true, destCreds: CREDS } : {}),
    ...opts,
    extraArgs: args,
  });
}

const inspect = (ref: string) => skopeoInspectRaw(ref, { tlsVerify: true, creds: CREDS, certDir });

/** The mirror's request log lines since `mark` (an index into the log). */
function requestsSince(mark: number): { method: string; path: string; status: number }[] {
  return logs
    .lines()
    .slice(mark)
    .filter((l) => l.msg === 'request')
    .map((l) => ({ method: String(l.method), path: String(l.path), status: Number(l.status) }));
}

const query = (path: string, name: string): string | null => new URL(path, 'http://mirror').searchParams.get(name);

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  multi = await pushMultiArch(registry.url, 'library/multi', '1', { layers: [20_000, 150_000], format: 'oci', seed: 'clients-multi' });
  base = await pushImage(registry.url, 'library/base', '1', { layers: [30_000, 90_000], format: 'docker', seed: 'clients-base' });
  hub = cleanup.add(await startHubFront({ target: registry.url }));
  const dir = cleanup.add(await makeTempDir('mirrorgate-clients-'));
  const ca = testCa();
  certDir = await writeCertDir(cleanup.add(await makeTempDir('mirrorgate-certdir-')).path, ca);
  const serving = await writeServingCert(dir.path, ca);
  const htpasswd = join(dir.path, 'htpasswd');
  await writeFile(htpasswd, `${USER}:${bcrypt.hashSync(PASSWORD, 8)}\n`);
  mirror = cleanup.add(
    await startMirror({
      upstreams: { 'docker.io': hub.url },
      logger: logs.logger,
      config: { mirror: { tls: { cert: serving.cert, key: serving.key }, auth: { htpasswd }, hosted: { repositories: ['team/**'] } } },
    }),
  );
}, 120_000);

afterAll(() => cleanup.run());

describe('skopeo', () => {
  it('copies a multi-arch image with --all from a proxied repository into a hosted one; it comes back by tag and by digest, identical', async () => {
    await copy(`docker://${mirror.host}/library/multi:1`, `docker://${mirror.host}/team/multi:1`, { multiArch: 'all' });
    const byTag = await inspect(`docker://${mirror.host}/team/multi:1`);
    expect(byTag.bytes.equals(multi.manifestBytes)).toBe(true);
    expect(byTag.digest).toBe(multi.digest);

    const out = cleanup.add(await makeTempDir('mirrorgate-multi-'));
    await copy(`docker://${mirror.host}/team/multi@${multi.digest}`, `dir:${out.path}`, { multiArch: 'all' });
    const image = await readDirImage(out.path);
    expect(image.manifestDigest).toBe(multi.digest);
    expect([...image.instances.keys()].sort()).toEqual(multi.manifests.map((m) => m.digest).sort());
    const blobs = multi.manifests.flatMap((m) => [m.config.digest, ...m.layers.map((l) => l.digest)]);
    expect(image.blobs.sort()).toEqual([...new Set(blobs)].sort());
    // Each platform's image by its own digest too.
    for (const child of multi.manifests) {
      const one = cleanup.add(await makeTempDir('mirrorgate-child-'));
      await copy(`docker://${mirror.host}/team/multi@${child.digest}`, `dir:${one.path}`);
      expect((await readDirImage(one.path)).manifestDigest).toBe(child.digest);
    }
  }, 180_000);

  it('copies between two hosted repositories by mounting every layer: no layer is uploaded again', async () => {
    const mark = logs.lines().length;
    await copy(`docker://${mirror.host}/team/multi:1`, `docker://${mirror.host}/team/multi-copy:1`, { multiArch: 'all' });
    const sent = requestsSince(mark);
    const layers = new Set(multi.manifests.flatMap((m) => m.layers.map((l) => l.digest)));
    const mounts = sent.filter((r) => r.method === 'POST' && r.path.startsWith('/v2/team/multi-copy/blobs/uploads/?') && r.path.includes('mount='));
    expect(mounts.map((r) => r.status)).toEqual(mounts.map(() => 201));
    expect(new Set(mounts.map((r) => query(r.path, 'mount')))).toEqual(layers);
    expect(mounts.every((r) => query(r.path, 'from') === 'team/multi')).toBe(true);
    // skopeo sends image configs as uploads whatever the registry holds; those are the only bytes sent.
    const uploaded = sent.filter((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/')).map((r) => query(r.path, 'digest'));
    expect(uploaded.sort()).toEqual(multi.manifests.map((m) => m.config.digest).sort());
    expect((await inspect(`docker://${mirror.host}/team/multi-copy:1`)).digest).toBe(multi.digest);
  }, 120_000);

  it('copies an image already cached from a proxied repository into a hosted one: layers mounted from the cache, no blob GET reaches the upstream', async () => {
    const warm = cleanup.add(await makeTempDir('mirrorgate-warm-'));
    await copy(`docker://${mirror.host}/library/base:1`, `dir:${warm.path}`);
    hub.reset();
    const mark = logs.lines().length;
    await copy(`docker://${mirror.host}/library/base:1`, `docker://${mirror.host}/team/base:1`);
    expect(hub.count({ kind: 'blob' })).toBe(0);
    const mounts = requestsSince(mark).filter((r) => r.method === 'POST' && r.path.includes('mount='));
    const byDigest = (a: (string | number | null)[], b: (string | number | null)[]): number => String(a[0]).localeCompare(String(b[0]));
    expect(mounts.map((r) => [query(r.path, 'mount'), query(r.path, 'from'), r.status]).sort(byDigest)).toEqual(base.layers.map((l) => [l.digest, 'library/base', 201]).sort(byDigest));
    const back = cleanup.add(await makeTempDir('mirrorgate-back-'));
    await copy(`docker://${mirror.host}/team/base:1`, `dir:${back.path}`);
    expect((await readDirImage(back.path)).manifestDigest).toBe(base.digest);
  }, 120_000);
});

describe('podman', () => {
  it('logs in over TLS, pulls an image through the mirror, pushes it to a hosted repository; skopeo pulls it back', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-podman-'));
    const podman = await podmanIn(dir.path, certDir);
    const flags = podman.registryFlags;
    const login = await podman.run(['login', ...flags, '--username', USER, '--password-stdin', mirror.host], { input: PASSWORD });
    expect(login.stdout).toContain('Login Succeeded');
    // Credentials went to the private authfile, for this host only.
    const auth = JSON.parse(await readFile(join(dir.path, 'auth.json'), 'utf8')) as { auths: Record<string, unknown> };
    expect(Object.keys(auth.auths)).toEqual([mirror.host]);

    await podman.run(['pull', ...flags, `${mirror.host}/library/base:1`]);
    await podman.run(['tag', `${mirror.host}/library/base:1`, `${mirror.host}/team/podman:v1`]);
    await podman.run(['push', ...flags, `${mirror.host}/team/podman:v1`]);

    const out = cleanup.add(await makeTempDir('mirrorgate-podman-back-'));
    await copy(`docker://${mirror.host}/team/podman:v1`, `dir:${out.path}`);
    const image = await readDirImage(out.path);
    const manifest = image.manifest as { config: { digest: string }; layers: { digest: string }[] };
    // podman stores layers uncompressed and compresses them again on push: the layer digests change, their
    // content does not (the config's diff_ids), and the config is the one it pulled.
    expect(manifest.config.digest).toBe(base.config.digest);
    const config = JSON.parse(await readFile(join(out.path, manifest.config.digest.slice('sha256:'.length)), 'utf8')) as { rootfs: { diff_ids: string[] } };
    const diffIds = await Promise.all(
      manifest.layers.map(async (l) => `sha256:${createHash('sha256').update(gunzipSync(await readFile(join(out.path, l.digest.slice('sha256:'.length))))).digest('hex')}`),
    );
    expect(diffIds).toEqual(config.rootfs.diff_ids);
    // Without credentials the hosted repository answers nothing.
    const anonymous = await skopeoCopy(`docker://${mirror.host}/team/podman:v1`, `dir:${out.path}-anon`, { srcTlsVerify: true, srcCertDir: certDir });
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toMatch(/unauthorized|authentication required/i);
  }, 240_000);
});
