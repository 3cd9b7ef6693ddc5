import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { dockerConfigJson, pullSecretManifest, pullSecretYaml } from '../../../src/deploy/pull-secret.js';

const spec = { server: 'registry.example.com', username: 'alice', password: 'p@ss:wörd', name: 'mirrorgate-pull-secret', namespace: 'mirrorgate' };

describe('pull secret manifest', () => {
  it('is a dockerconfigjson Secret whose auth entry is for the server', () => {
    const secret = parse(pullSecretYaml(spec)) as { type: string; metadata: { name: string; namespace: string }; data: Record<string, string> };
    expect(secret.type).toBe('kubernetes.io/dockerconfigjson');
    expect(secret.metadata).toMatchObject({ name: spec.name, namespace: spec.namespace });
    const cfg = JSON.parse(Buffer.from(secret.data['.dockerconfigjson']!, 'base64').toString('utf8')) as { auths: Record<string, { username: string; password: string; auth: string }> };
    expect(Object.keys(cfg.auths)).toEqual(['registry.example.com']);
    const entry = cfg.auths['registry.example.com']!;
    expect(entry).toMatchObject({ username: 'alice', password: 'p@ss:wörd' });
    expect(Buffer.from(entry.auth, 'base64').toString('utf8')).toBe('alice:p@ss:wörd');
  });

  it('refuses a server with a scheme or path, and user names with a colon', () => {
    expect(() => pullSecretManifest({ ...spec, server: 'https://registry.example.com' })).toThrow(/not a registry host/);
    expect(() => pullSecretManifest({ ...spec, username: 'a:b' })).toThrow(/user name/);
  });

  it('keeps a port in the auths key', () => {
    expect(Object.keys((JSON.parse(dockerConfigJson('reg.local:5000', 'u', 'p')) as { auths: object }).auths)).toEqual(['reg.local:5000']);
  });
});
