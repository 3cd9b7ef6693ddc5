import { describe, expect, it } from 'vitest';
import { parseChallenges } from '../../../src/mirror/upstream/challenge.js';

describe('parseChallenges', () => {
  it("parses Docker Hub's Bearer challenge", () => {
    const c = parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"');
    expect(c).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/nginx:pull' } },
    ]);
  });
  it('keeps commas inside quoted values and handles several challenges', () => {
    const c = parseChallenges('Bearer realm="https://x/token",scope="repository:a:pull,push", Basic realm="reg"');
    expect(c[0]!.params.scope).toBe('repository:a:pull,push');
    expect(c[1]).toEqual({ scheme: 'basic', params: { realm: 'reg' } });
  });
  it('handles unquoted values, escapes and junk without throwing', () => {
    expect(parseChallenges('Basic realm=reg')[0]!.params.realm).toBe('reg');
    expect(parseChallenges('Bearer realm="a\\"b"')[0]!.params.realm).toBe('a"b');
    expect(parseChallenges(undefined)).toEqual([]);
    expect(() => parseChallenges('=,,=="')).not.toThrow();
  });
});
