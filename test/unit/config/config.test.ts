import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/load.js';
import { parseListen } from '../../../src/config/listen.js';
import { mirrorFlagOverrides } from '../../../src/mirror/command.js';
import { parseDuration, parseSize } from '../../../src/config/units.js';

const dirs: string[] = [];
function file(text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'mg-config-'));
  dirs.push(dir);
  const p = path.join(dir, 'config.yaml');
  writeFileSync(p, text);
  return p;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('units', () => {
  it('parses durations', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration(5)).toBe(5000);
    expect(parseDuration('10 minutes')).toBeUndefined();
    expect(parseDuration('')).toBeUndefined();
    expect(parseDuration('-5s')).toBeUndefined();
  });
  it('parses sizes', () => {
    expect(parseSize('50GiB')).toBe(50 * 2 ** 30);
    expect(parseSize('512MB')).toBe(512e6);
    expect(parseSize(1024)).toBe(1024);
    expect(parseSize('12 parsecs')).toBeUndefined();
  });
  it('parses listen addresses', () => {
    expect(parseListen(':5000')).toEqual({ host: undefined, port: 5000 });
    expect(parseListen('127.0.0.1:5002')).toEqual({ host: '127.0.0.1', port: 5002 });
    expect(parseListen('[::1]:5000')).toEqual({ host: '::1', port: 5000 });
    expect(parseListen('5000')).toEqual({ host: undefined, port: 5000 });
    expect(parseListen('host:99999')).toBeUndefined();
    expect(parseListen('a b:80')).toBeUndefined();
  });
});

describe('loadConfig', () => {
  it('has embedded defaults: the mirror on :5000 with ./data, proxying Docker Hub and the common registries', () => {
    const c = loadConfig();
    expect(c.mirror.listen).toBe(':5000');
    expect(c.mirror.storage.path).toBe('./data');
    expect(Object.keys(c.upstreams)).toEqual(['docker.io', 'ghcr.io', 'quay.io', 'registry.k8s.io']);
    expect(c.upstreams['docker.io']!.url).toBe('https://registry-1.docker.io');
    expect(c.upstreams['docker.io']!.tagFreshness).toBe(600_000);
    expect(c.webhook.mirrorHost).toBe('registry.krisalee.dev.joona.fr');
    expect(Object.isFrozen(c.mirror)).toBe(true);
  });

  it('reads a YAML file, then the environment, then flags', () => {
    const p = file(['mirror:', '  listen: ":6000"', '  storage: { path: /srv/cache }', 'upstreams:', '  ghcr.io: { url: "https://ghcr.io", tagFreshness: 30s }'].join('\n'));
    const c = loadConfig({ file: p, env: { MIRRORGATE_STORAGE: '/env/cache' }, overrides: { mirror: { listen: '127.0.0.1:7000' } } });
    expect(c.mirror.listen).toBe('127.0.0.1:7000');
    expect(c.mirror.storage.path).toBe('/env/cache');
    expect(c.upstreams['ghcr.io']!.tagFreshness).toBe(30_000);
    expect(c.upstreams['docker.io']).toBeUndefined();
  });

  it('reports every problem at once, with where it is', () => {
    const p = file(['mirror:', '  listen: "nowhere"', '  bogus: 1', 'upstreams:', '  "Not A Host!": { url: "https://x" }', '  quay.io: { url: "ftp://quay.io", tagFreshness: soon }'].join('\n'));
    let err: unknown;
    try {
      loadConfig({ file: p });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    expect((err as ConfigError).code).toBe('CONFIG_INVALID');
    expect(problems).toMatch(/mirror\.listen/);
    expect(problems).toMatch(/bogus/);
    expect(problems).toMatch(/Not A Host/);
    expect(problems).toMatch(/quay\.io\.url/);
    expect(problems).toMatch(/quay\.io\.tagFreshness: not a duration/);
  });

  it('refuses a file that is not YAML or not a mapping, saying which file', () => {
    expect(() => loadConfig({ file: file('mirror: [unclosed') })).toThrow(/not valid YAML/);
    expect(() => loadConfig({ file: file('- a\n- b\n') })).toThrow(/top level must be a mapping/);
    expect(() => loadConfig({ file: '/nonexistent/mirrorgate.yaml' })).toThrow(/cannot read/);
  });

  it('takes upstreams from MIRRORGATE_UPSTREAMS, URL optional for well-known registries', () => {
    const c = loadConfig({ env: { MIRRORGATE_UPSTREAMS: 'docker.io=http://127.0.0.1:5001,quay.io' } });
    expect(c.upstreams['docker.io']!.url).toBe('http://127.0.0.1:5001');
    expect(c.upstreams['quay.io']!.url).toBe('https://quay.io');
    expect(() => loadConfig({ env: { MIRRORGATE_UPSTREAMS: 'example.org' } })).toThrow(/expected HOST=URL/);
  });

  it('mirror.workers: 1 by default; a number or auto, from the file, MIRRORGATE_WORKERS or --workers', () => {
    expect(loadConfig({ env: {} }).mirror.workers).toBe(1);
    expect(loadConfig({ env: { MIRRORGATE_WORKERS: '4' } }).mirror.workers).toBe(4);
    expect(loadConfig({ env: { MIRRORGATE_WORKERS: 'auto' } }).mirror.workers).toBe('auto');
    expect(() => loadConfig({ env: { MIRRORGATE_WORKERS: '0' } })).toThrow(/mirror\.workers/);
    expect(() => loadConfig({ env: { MIRRORGATE_WORKERS: 'many' } })).toThrow(/mirror\.workers/);
    const flags = mirrorFlagOverrides({ workers: '3' });
    expect(loadConfig({ env: {}, overrides: flags.overrides }).mirror.workers).toBe(3);
    expect(mirrorFlagOverrides({ workers: '2x' }).problems).toEqual(['--workers: a number or auto, not "2x"']);
  });

  it('requires exactly one source for each credential', () => {
    const p = file(['upstreams:', '  docker.io:', '    url: https://registry-1.docker.io', '    credentials:', '      username: { value: bob, env: USER }', '      password: { file: /run/secrets/pass }'].join('\n'));
    expect(() => loadConfig({ file: p })).toThrow(/exactly one of value, file or env/);
  });

  it('mirror.redis: off by default; a redis:// or rediss:// URL, with defaults for the rest', () => {
    expect(loadConfig({}).mirror.redis).toBeUndefined();
    const redis = loadConfig({ overrides: { mirror: { redis: { url: 'redis://redis.mirrorgate.svc:6379/0', password: { env: 'REDIS_PASSWORD' } } } } }).mirror.redis;
    expect(redis).toEqual({ url: 'redis://redis.mirrorgate.svc:6379/0', password: { env: 'REDIS_PASSWORD' }, keyPrefix: 'mirrorgate:', connectTimeout: 2000, commandTimeout: 500, cacheTtl: 3_600_000 });
    expect(loadConfig({ overrides: { mirror: { redis: { url: 'rediss://redis.example:6380' } } } }).mirror.redis?.url).toBe('rediss://redis.example:6380');
    expect(() => loadConfig({ overrides: { mirror: { redis: { url: 'http://redis:6379' } } } })).toThrow(/mirror\.redis\.url/);
    expect(() => loadConfig({ overrides: { mirror: { redis: { url: 'redis://redis', commandTimeout: 0, keyPrefix: 'a b' } } } })).toThrow(/commandTimeout[\s\S]*keyPrefix|keyPrefix[\s\S]*commandTimeout/);
  });

  it('warm images: references to configured upstreams, platforms as os/architecture', () => {
    const c = loadConfig({ overrides: { mirror: { warm: { images: ['nginx:1.27', 'index.docker.io/library/redis', 'ghcr.io/org/app@sha256:' + 'a'.repeat(64)] } } } });
    expect(c.mirror.warm.images).toHaveLength(3);
    expect(c.mirror.warm.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    expect(c.mirror.warm.refreshInterval).toBe(3_600_000);
    let err: unknown;
    try {
      loadConfig({ overrides: { mirror: { warm: { images: ['example.org/app:1', 'nginx:no spaces', 'nginx'], platforms: ['amd64'], refreshInterval: '10ms' } } } });
    } catch (e) {
      err = e;
    }
    const problems = (err as ConfigError).problems.join('\n');
    expect(problems).toMatch(/mirror\.warm\.images\.1: not an image reference/);
    expect(problems).toMatch(/mirror\.warm\.platforms\.0: not a platform/);
    expect(problems).toMatch(/mirror\.warm\.refreshInterval: at least 1s/);
    // The mirror never fetches from a registry that is not an upstream.
    expect(problems).toMatch(/mirror\.warm\.images\.0: example\.org is not a configured upstream/);
  });
});
