import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { MirrorgateError } from '../../../src/common/errors.js';
import { silentLogger } from '../../../src/common/logger.js';
import { loadConfig } from '../../../src/config/load.js';
import { Upstreams } from '../../../src/mirror/upstream/upstreams.js';

const upstreams = new Upstreams(loadConfig({ env: { MIRRORGATE_UPSTREAMS: 'docker.io,ghcr.io,quay.io,registry.k8s.io' } }), {
  logger: silentLogger(),
  clock: new ManualClock(),
});

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as MirrorgateError).code;
  }
  return undefined;
}

describe('Upstreams.resolve', () => {
  it('routes Docker Hub names, adding library/ to single names', () => {
    expect(upstreams.resolve('nginx')).toEqual({ upstream: 'docker.io', path: 'library/nginx' });
    expect(upstreams.resolve('library/nginx')).toEqual({ upstream: 'docker.io', path: 'library/nginx' });
    expect(upstreams.resolve('bitnami/redis')).toEqual({ upstream: 'docker.io', path: 'bitnami/redis' });
    expect(upstreams.resolve('docker.io/nginx')).toEqual({ upstream: 'docker.io', path: 'library/nginx' });
    expect(upstreams.resolve('index.docker.io/bitnami/redis')).toEqual({ upstream: 'docker.io', path: 'bitnami/redis' });
    expect(upstreams.resolve('registry-1.docker.io/library/nginx')).toEqual({ upstream: 'docker.io', path: 'library/nginx' });
  });
  it('routes other registries by their first path component', () => {
    expect(upstreams.resolve('ghcr.io/org/app')).toEqual({ upstream: 'ghcr.io', path: 'org/app' });
    expect(upstreams.resolve('registry.k8s.io/pause')).toEqual({ upstream: 'registry.k8s.io', path: 'pause' });
    expect(upstreams.publicName({ upstream: 'ghcr.io', path: 'org/app' })).toBe('ghcr.io/org/app');
    expect(upstreams.publicName({ upstream: 'docker.io', path: 'library/nginx' })).toBe('library/nginx');
  });
  it('routes by ?ns= as containerd sends it', () => {
    expect(upstreams.resolve('org/app', 'ghcr.io')).toEqual({ upstream: 'ghcr.io', path: 'org/app' });
    expect(upstreams.resolve('library/nginx', 'docker.io')).toEqual({ upstream: 'docker.io', path: 'library/nginx' });
    expect(upstreams.resolve('nginx', 'registry-1.docker.io')).toEqual({ upstream: 'docker.io', path: 'library/nginx' });
  });
  it('is not an open proxy: unknown hosts are refused', () => {
    expect(errorCode(() => upstreams.resolve('evil.example/x'))).toBe('UPSTREAM_UNKNOWN');
    expect(errorCode(() => upstreams.resolve('x', 'evil.example'))).toBe('UPSTREAM_UNKNOWN');
    expect(errorCode(() => upstreams.resolve('localhost/x'))).toBe('UPSTREAM_UNKNOWN');
  });
  it('refuses invalid names', () => {
    for (const bad of ['', 'UPPER/case', '../etc', 'a/../b', 'a//b', '-a', 'a-', `${'a'.repeat(256)}`, 'a/b/', '/a']) {
      expect(errorCode(() => upstreams.resolve(bad))).toBe('NAME_INVALID');
    }
  });
});
