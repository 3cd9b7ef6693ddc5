import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { silentLogger } from '../../../src/common/logger.js';
import { configSchema, type Config } from '../../../src/config/schema.js';
import { HostedNames } from '../../../src/mirror/hosted/hosted-names.js';
import { canonicalHost } from '../../../src/mirror/upstream/upstream-host.js';
import { Upstreams } from '../../../src/mirror/upstream/upstreams.js';
import { parseReference } from '../../../src/reference/parse.js';
import { rewriteImage } from '../../../src/reference/rewrite.js';
import { rulesFromConfig } from '../../../src/webhook/rules.js';
import { Gen } from './generate.js';

const D64 = 'a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4';
const MIRROR = 'registry.krisalee.dev.joona.fr';
const rules = rulesFromConfig(configSchema.parse({}));

function out(image: string, r = rules) {
  return rewriteImage(image, r);
}

describe('rewriteImage with the default configuration', () => {
  it.each([
    ['nginx', `${MIRROR}/library/nginx:latest`],
    ['nginx:1.27', `${MIRROR}/library/nginx:1.27`],
    ['busybox:1.36', `${MIRROR}/library/busybox:1.36`],
    ['bitnami/nginx:1.27', `${MIRROR}/bitnami/nginx:1.27`],
    ['docker.io/library/redis@sha256:' + D64, `${MIRROR}/library/redis@sha256:${D64}`],
    ['index.docker.io/x', `${MIRROR}/library/x:latest`],
    ['registry-1.docker.io/library/x:1', `${MIRROR}/library/x:1`],
    ['nginx:1.27@sha256:' + D64, `${MIRROR}/library/nginx:1.27@sha256:${D64}`],
    ['ghcr.io/example-org/app:v2.3.1', `${MIRROR}/ghcr.io/example-org/app:v2.3.1`],
    ['quay.io/prometheus/node-exporter:v1.8.2', `${MIRROR}/quay.io/prometheus/node-exporter:v1.8.2`],
    ['registry.k8s.io/pause:3.10', `${MIRROR}/registry.k8s.io/pause:3.10`],
    ['GHCR.io/a/b:1', `${MIRROR}/ghcr.io/a/b:1`],
  ])('%s -> %s', (input, expected) => {
    expect(out(input)).toEqual({ input, output: expected, changed: true, reason: 'rewritten' });
  });

  it.each([
    [`${MIRROR}/library/nginx:1.27`, 'already-mirrored'],
    [`${MIRROR}/library/nginx`, 'already-mirrored'],
    ['localhost:5000/tools/debug:1', 'not-upstream'],
    ['example.com/a/b', 'not-upstream'],
    ['Nginx', 'invalid'],
    ['nginx@md5:' + 'a'.repeat(32), 'invalid'],
    ['nginx@sha384:' + 'a'.repeat(96), 'unsupported-digest'],
  ])('leaves %s alone (%s)', (input, reason) => {
    const r = out(input);
    expect(r.changed).toBe(false);
    expect(r.output).toBe(input);
    expect(r.reason).toBe(reason);
    expect(r.detail).toBeTruthy();
  });

  it('matches the done criteria of the issue', () => {
    const m = rulesFromConfig(configSchema.parse({ webhook: { mirrorHost: 'm.example' } }));
    expect(out('ghcr.io/a/b@sha256:' + D64, m).output).toBe(`m.example/ghcr.io/a/b@sha256:${D64}`);
  });
});

describe('rewrite rules from configuration', () => {
  it('rewrites only the listed registries when webhook.registries is set', () => {
    const r = rulesFromConfig(configSchema.parse({ webhook: { registries: ['docker.io'] } }));
    expect(out('nginx', r).changed).toBe(true);
    expect(out('ghcr.io/a/b', r).reason).toBe('not-upstream');
  });

  it('rewrites exactly the configured upstreams by default (never an image the mirror cannot serve)', () => {
    const r = rulesFromConfig(configSchema.parse({ upstreams: { 'harbor.example.com': { url: 'https://harbor.example.com' } } }));
    expect(out('harbor.example.com/p/a:1', r).output).toBe(`${MIRROR}/harbor.example.com/p/a:1`);
    expect(out('nginx', r)).toMatchObject({ changed: false, reason: 'not-upstream' });
    const defaults = rulesFromConfig(configSchema.parse({}));
    for (const image of ['nginx', 'ghcr.io/a/b', 'quay.io/a/b', 'registry.k8s.io/pause:3.9']) expect(out(image, defaults).changed, image).toBe(true);
    expect(out('gcr.io/a/b', defaults).reason).toBe('not-upstream');
  });

  it('refuses hosts with a port: they cannot be a path component on the mirror', () => {
    const r = rulesFromConfig(configSchema.parse({ webhook: { registries: ['localhost:5000'] } }));
    expect(out('localhost:5000/a', r).reason).toBe('unroutable-host');
  });

  it('applies exclude patterns to the written and normalised names', () => {
    const r = rulesFromConfig(configSchema.parse({ webhook: { exclude: ['nginx', 'docker.io/bitnami/*', 'ghcr.io/**', 'quay.io/*/x:debug'] } }));
    expect(out('nginx:1.27', r).reason).toBe('excluded');
    expect(out('docker.io/library/nginx', r).reason).toBe('excluded');
    expect(out('bitnami/redis', r).reason).toBe('excluded');
    expect(out('bitnami/a/b', r).changed).toBe(true);
    expect(out('ghcr.io/a/b/c:1', r).reason).toBe('excluded');
    expect(out('quay.io/o/x:debug', r).reason).toBe('excluded');
    expect(out('quay.io/o/x:1', r).changed).toBe(true);
    expect(out('redis', r).changed).toBe(true);
  });

  it('refuses mirror hosts that would read as a Docker Hub namespace', () => {
    expect(configSchema.safeParse({ webhook: { mirrorHost: 'mirror' } }).success).toBe(false);
    expect(configSchema.safeParse({ webhook: { mirrorHost: 'docker.io' } }).success).toBe(false);
    expect(configSchema.safeParse({ webhook: { mirrorHost: 'localhost:5000' } }).success).toBe(true);
  });

  it('leaves the reference alone when the rewritten name would pass 255 characters', () => {
    const path = 'a'.repeat(255 - 'ghcr.io/'.length);
    const r = out(`ghcr.io/${path}`);
    expect(r.reason).toBe('name-too-long');
    expect(r.output).toBe(`ghcr.io/${path}`);
  });
});

describe('names the mirror would route elsewhere', () => {
  it.each([
    ['docker.io/ghcr.io/evil/app', `${MIRROR}/docker.io/ghcr.io/evil/app:latest`],
    ['docker.io/localhost/app:1', `${MIRROR}/docker.io/localhost/app:1`],
    ['index.docker.io/evil.example/app@sha256:' + D64, `${MIRROR}/docker.io/evil.example/app@sha256:${D64}`],
    ['registry-1.docker.io/docker.io/app', `${MIRROR}/docker.io/docker.io/app:latest`],
    ['docker.io/localhostx/app', `${MIRROR}/localhostx/app:latest`],
    ['docker.io/library/nginx', `${MIRROR}/library/nginx:latest`],
  ])('writes the Docker Hub repository %s as %s', (input, expected) => {
    expect(out(input)).toEqual({ input, output: expected, changed: true, reason: 'rewritten' });
  });

  it('leaves alone a listed registry host the mirror would read as a Docker Hub namespace', () => {
    const r = rulesFromConfig(configSchema.parse({ webhook: { registries: ['myreg'] } }));
    expect(out('MyReg/team/app:1', r)).toMatchObject({ changed: false, reason: 'unroutable-host', output: 'MyReg/team/app:1' });
  });
});

/** The webhook's rules and the mirror's router built from one configuration, as a deployment has them. */
function deployment(raw: Record<string, unknown>): { rules: ReturnType<typeof rulesFromConfig>; router: Upstreams; config: Config } {
  const config = configSchema.parse(raw);
  return { rules: rulesFromConfig(config), router: new Upstreams(config, { logger: silentLogger(), clock: new ManualClock() }), config };
}

describe('properties over generated references', () => {
  const mirrors = [rules, rulesFromConfig(configSchema.parse({ webhook: { mirrorHost: 'localhost:5000', registries: ['docker.io', 'ghcr.io', 'example.com'] } }))];

  it('is idempotent, always outputs a valid reference when the input was one, and keeps tag and digest', () => {
    const g = new Gen(20241122);
    let changed = 0;
    for (let i = 0; i < 5000; i++) {
      const input = i % 3 === 0 ? g.mutated() : g.validReference();
      for (const r of mirrors) {
        const once = rewriteImage(input, r);
        const twice = rewriteImage(once.output, r);
        expect(twice.output, input).toBe(once.output);
        expect(twice.changed, input).toBe(false);
        const before = parseReference(input);
        expect(once.reason === 'invalid', input).toBe(!before.ok);
        if (before.ok) {
          const after = parseReference(once.output);
          expect(after.ok, `${input} -> ${once.output}`).toBe(true);
          if (after.ok && once.changed) {
            changed++;
            expect(after.ref.domain).toBe(r.mirrorHost);
            expect(after.ref.digest).toBe(before.ref.digest);
            expect(after.ref.tag).toBe(before.ref.tag ?? (before.ref.digest ? undefined : 'latest'));
            expect(after.ref.path.endsWith(before.ref.path)).toBe(true);
          }
        } else {
          expect(once.output).toBe(input);
        }
      }
    }
    expect(changed).toBeGreaterThan(1000);
  });

  it('routes every rewritten reference, through the mirror, to the registry and repository it named', async () => {
    const upstream = (url: string) => ({ url });
    const deployments = [
      deployment({}),
      deployment({
        webhook: { mirrorHost: 'localhost:5000' },
        upstreams: {
          'docker.io': upstream('https://registry-1.docker.io'), 'ghcr.io': upstream('https://ghcr.io'), 'example.com': upstream('https://example.com'),
          localhost: upstream('http://localhost'), myreg: upstream('https://myreg'), 'evil.example': upstream('https://evil.example'),
        },
      }),
    ];
    const g = new Gen(20260113);
    let routed = 0;
    let explicitHub = 0;
    try {
      for (let i = 0; i < 5000; i++) {
        const input = i % 2 === 0 ? g.hostileReference() : g.validReference();
        const before = parseReference(input);
        for (const { rules: r, router } of deployments) {
          const once = rewriteImage(input, r);
          if (!once.changed || !before.ok) continue;
          const after = parseReference(once.output);
          expect(after.ok, `${input} -> ${once.output}`).toBe(true);
          if (!after.ok) continue;
          let target: unknown;
          try {
            target = router.resolve(after.ref.path);
          } catch (err) {
            target = (err as { code?: string }).code;
          }
          const named = canonicalHost(before.ref.domain);
          // On Docker Hub a single name is a `library/` name (`registry-1.docker.io/x` is not normalised by the parser).
          const path = named === 'docker.io' && !before.ref.path.includes('/') ? `library/${before.ref.path}` : before.ref.path;
          expect(target, `${input} -> ${once.output}`).toEqual({ upstream: named, path });
          // The name the mirror lists the repository under (its catalog) routes back to it too.
          expect(router.resolve(router.publicName({ upstream: named, path })), `${input}: catalog name`).toEqual({ upstream: named, path });
          routed++;
          if (after.ref.path.startsWith('docker.io/')) explicitHub++;
        }
      }
    } finally {
      await Promise.all(deployments.map((d) => d.router.close()));
    }
    expect(routed).toBeGreaterThan(3000);
    expect(explicitHub).toBeGreaterThan(200);
  });
});

describe('hosted repositories and the rewrite', () => {
  const hosted = configSchema.parse({ mirror: { hosted: { repositories: ['team/**', 'library/internal'] } } });
  const r = rulesFromConfig(hosted);

  it.each([
    ['team/app:1', `${MIRROR}/docker.io/team/app:1`],
    ['docker.io/team/sub/app', `${MIRROR}/docker.io/team/sub/app:latest`],
    ['internal', `${MIRROR}/docker.io/library/internal:latest`],
    ['nginx', `${MIRROR}/library/nginx:latest`],
    ['teams/app', `${MIRROR}/teams/app:latest`],
  ])('%s -> %s: a Docker Hub path a hosted pattern matches is written with docker.io/', (image, expected) => {
    expect(out(image, r).output).toBe(expected);
  });

  it('what it writes routes, on the mirror, to Docker Hub and never to the hosted repository', async () => {
    const names = new HostedNames(hosted.mirror.hosted.repositories);
    const upstreams = new Upstreams(hosted, { logger: silentLogger(), clock: new ManualClock() });
    try {
      for (const image of ['team/app:1', 'docker.io/team/sub/app', 'internal']) {
        const written = parseReference(out(image, r).output);
        if (!written.ok) throw new Error(written.error);
        expect(names.match(written.ref.path), image).toBeUndefined();
        expect(upstreams.resolve(written.ref.path).upstream).toBe('docker.io');
      }
    } finally {
      await upstreams.close();
    }
  });
});
