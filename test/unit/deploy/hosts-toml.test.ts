import { describe, expect, it } from 'vitest';
import { containerdRegistryDir, hostsTomlFiles, mirrorUrl, printHostsToml, renderHostsToml } from '../../../src/deploy/hosts-toml.js';
import { loadConfig } from '../../../src/config/load.js';
import { DEFAULT_UPSTREAMS, KNOWN_UPSTREAM_URLS } from '../../../src/config/schema.js';

describe('containerd hosts.toml', () => {
  it('renders one file per default upstream, server = the upstream, the mirror as a pull/resolve host', () => {
    const files = hostsTomlFiles(loadConfig(), { mirror: 'registry.example.com', ca: '/etc/containerd/certs.d/registry.example.com/ca.crt' });
    expect(files.map((f) => f.registry)).toEqual(DEFAULT_UPSTREAMS);
    const hub = files[0]!;
    expect(hub.relativePath).toBe('docker.io/hosts.toml');
    expect(hub.text).toBe(
      [
        `server = "${KNOWN_UPSTREAM_URLS['docker.io']}"`,
        '',
        '[host."https://registry.example.com"]',
        '  capabilities = ["pull", "resolve"]',
        '  ca = "/etc/containerd/certs.d/registry.example.com/ca.crt"',
        '',
      ].join('\n'),
    );
  });

  it('leaves ca out when none is given and keeps an explicit http scheme and port', () => {
    expect(renderHostsToml('https://quay.io', { mirror: 'http://10.0.0.5:5000' })).toBe(
      'server = "https://quay.io"\n\n[host."http://10.0.0.5:5000"]\n  capabilities = ["pull", "resolve"]\n',
    );
  });

  it('files Docker Hub aliases under docker.io, once', () => {
    expect(containerdRegistryDir('index.docker.io')).toBe('docker.io');
    expect(containerdRegistryDir('registry-1.docker.io')).toBe('docker.io');
    const config = loadConfig({ overrides: { upstreams: { 'index.docker.io': { url: 'https://registry-1.docker.io' }, 'docker.io': { url: 'https://registry-1.docker.io' }, 'gcr.io': { url: 'https://gcr.io' } } } });
    expect(hostsTomlFiles(config, { mirror: 'm.example.com' }).map((f) => f.relativePath)).toEqual(['docker.io/hosts.toml', 'gcr.io/hosts.toml']);
  });

  it('prints each file under a header naming its path', () => {
    const out = printHostsToml(hostsTomlFiles(loadConfig({ overrides: { upstreams: { 'ghcr.io': { url: 'https://ghcr.io' } } } }), { mirror: 'm.example.com' }));
    expect(out).toBe('# /etc/containerd/certs.d/ghcr.io/hosts.toml\nserver = "https://ghcr.io"\n\n[host."https://m.example.com"]\n  capabilities = ["pull", "resolve"]\n');
  });

  it('refuses a mirror that is neither a host nor a bare URL', () => {
    for (const bad of ['https://m.example.com/v2', 'ftp://m.example.com', 'M_EXAMPLE', '']) expect(() => mirrorUrl(bad), bad).toThrow(/not a registry host/);
    expect(mirrorUrl('https://m.example.com/')).toBe('https://m.example.com');
  });

  it('escapes quotes and backslashes in the CA path as TOML basic strings', () => {
    expect(renderHostsToml('https://ghcr.io', { mirror: 'm.example.com', ca: 'C:\\ca "x".crt' })).toContain('ca = "C:\\\\ca \\"x\\".crt"');
  });
});
